// Default Rényi orders: Opacus's `RDPAccountant.DEFAULT_ALPHAS`
// (github.com/pytorch/opacus, opacus/accountants/rdp.py):
//   [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
// i.e. 1.1, 1.2, ..., 10.9 then 12, 13, ..., 63 (151 orders). Fine steps at small orders matter
// for large noise or many rounds, where the optimum order is small.

function defaultOrders(): number[] {
  const orders: number[] = [];
  for (let x = 1; x < 100; x++) orders.push(1 + x / 10); // same doubles as Python's 1 + x / 10.0
  for (let a = 12; a < 64; a++) orders.push(a);
  return orders;
}

/** Opacus's default orders (151 values from 1.1 to 63). Frozen; copy it to change it. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze(defaultOrders());
