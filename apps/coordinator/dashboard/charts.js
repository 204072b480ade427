// fedclr's per-round charts as plain SVG strings, shared by the live dashboard (index.html) and the
// self-contained run report (report.html, which inlines this file). No dependency, no DOM access:
// roundCharts(rounds) -> [{id, title, svg}]. Every plotted value is an element carrying
// data-series, data-x (round id) and data-y (the exact number plotted), so tests can compare the
// picture with the API's numbers.
/* exported FedclrCharts */
var FedclrCharts = (function () {
  'use strict';
  var W = 560, H = 200, L = 52, R = 12, T = 24, B = 30;
  var COLORS = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6'];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function fmt(v) {
    if (Number.isInteger(v)) return String(v);
    var a = Math.abs(v);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 0.01) return v.toFixed(3);
    return v.toExponential(1);
  }
  function scale(d0, d1, r0, r1) {
    var span = d1 - d0 || 1;
    return function (v) { return r0 + ((v - d0) / span) * (r1 - r0); };
  }
  function frame(title, xs, yMax, yMin, legend) {
    var out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + W + ' ' + H + '" class="chart" role="img" aria-label="' + esc(title) + '">'];
    out.push('<text x="' + L + '" y="14" class="chart-title">' + esc(title) + '</text>');
    var y = scale(yMin, yMax, H - B, T);
    for (var i = 0; i <= 4; i++) {
      var v = yMin + ((yMax - yMin) * i) / 4;
      out.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(v).toFixed(1) + '" y2="' + y(v).toFixed(1) + '" class="grid"/>');
      out.push('<text x="' + (L - 4) + '" y="' + (y(v) + 3).toFixed(1) + '" text-anchor="end" class="tick">' + fmt(v) + '</text>');
    }
    if (xs.length > 0) {
      var step = Math.max(1, Math.ceil(xs.length / 10));
      var x = xScale(xs);
      for (var j = 0; j < xs.length; j += step) out.push('<text x="' + x(xs[j]).toFixed(1) + '" y="' + (H - B + 14) + '" text-anchor="middle" class="tick">' + xs[j] + '</text>');
    }
    var lx = W - R;
    for (var k = legend.length - 1; k >= 0; k--) {
      lx -= 8 + legend[k].length * 6.5;
      out.push('<rect x="' + lx + '" y="6" width="8" height="8" fill="' + COLORS[k % COLORS.length] + '"/><text x="' + (lx + 11) + '" y="14" class="legend">' + esc(legend[k]) + '</text>');
      lx -= 10;
    }
    return { out: out, y: y };
  }
  function xScale(xs) {
    // Categorical by position: rounds are evenly spaced whatever their ids.
    var n = xs.length;
    var pos = {};
    xs.forEach(function (v, i) { pos[v] = i; });
    var inner = W - L - R;
    return function (v) { return L + (n <= 1 ? inner / 2 : ((pos[v] + 0.5) * inner) / n); };
  }
  function empty(title, why) {
    return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + W + ' 60" class="chart empty" role="img" aria-label="' + esc(title) + '"><text x="' + L + '" y="14" class="chart-title">' + esc(title) + '</text><text x="' + L + '" y="40" class="tick">' + esc(why) + '</text></svg>';
  }

  /** series: [{name, points: [{x, y}]}]; x are round ids. */
  function line(title, series, opts) {
    var xs = [];
    var seen = {};
    var ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (!seen[p.x]) { seen[p.x] = true; xs.push(p.x); }
        ys.push(p.y);
      });
    });
    if (ys.length === 0) return empty(title, (opts && opts.none) || 'no data yet');
    xs.sort(function (a, b) { return a - b; });
    var yMin = opts && opts.zero ? 0 : Math.min.apply(null, ys);
    var yMax = Math.max.apply(null, ys);
    if (yMax === yMin) { yMax += Math.abs(yMax) * 0.1 || 1; if (!(opts && opts.zero)) yMin -= Math.abs(yMin) * 0.1 || 1; }
    var drawn = series.filter(function (s) { return s.points.length > 0; });
    var f = frame(title, xs, yMax, yMin, drawn.map(function (s) { return s.name; }));
    var x = xScale(xs);
    drawn.forEach(function (s, i) {
      var c = COLORS[i % COLORS.length];
      var pts = s.points.map(function (p) { return x(p.x).toFixed(1) + ',' + f.y(p.y).toFixed(1); });
      if (pts.length > 1) f.out.push('<polyline fill="none" stroke="' + c + '" stroke-width="2" points="' + pts.join(' ') + '"/>');
      s.points.forEach(function (p) {
        f.out.push('<circle class="point" r="3" fill="' + c + '" cx="' + x(p.x).toFixed(1) + '" cy="' + f.y(p.y).toFixed(1) + '" data-series="' + esc(s.name) + '" data-x="' + p.x + '" data-y="' + p.y + '"><title>round ' + p.x + ': ' + esc(s.name) + ' ' + fmt(p.y) + '</title></circle>');
      });
    });
    f.out.push('</svg>');
    return f.out.join('');
  }

  /** bars: [{x, parts: [{name, value}]}], stacked in part order. */
  function stacked(title, names, bars, opts) {
    if (bars.length === 0) return empty(title, (opts && opts.none) || 'no data yet');
    var xs = bars.map(function (b) { return b.x; });
    var yMax = Math.max.apply(null, bars.map(function (b) { return b.parts.reduce(function (a, p) { return a + p.value; }, 0); })) || 1;
    // The legend names only the parts drawn (e.g. no 'training not reported' when every round reports it).
    var used = names.filter(function (name) { return bars.some(function (b) { return b.parts.some(function (p) { return p.name === name; }); }); });
    var f = frame(title, xs, yMax, 0, used);
    var x = xScale(xs);
    var bw = Math.max(2, Math.min(24, ((W - L - R) / xs.length) * 0.7));
    bars.forEach(function (b) {
      var base = 0;
      b.parts.forEach(function (p) {
        var i = used.indexOf(p.name);
        var y0 = f.y(base), y1 = f.y(base + p.value);
        f.out.push('<rect class="bar" x="' + (x(b.x) - bw / 2).toFixed(1) + '" width="' + bw.toFixed(1) + '" y="' + y1.toFixed(1) + '" height="' + Math.max(0, y0 - y1).toFixed(1) + '" fill="' + COLORS[i % COLORS.length] + '" data-series="' + esc(p.name) + '" data-x="' + b.x + '" data-y="' + p.value + '"><title>round ' + b.x + ': ' + esc(p.name) + ' ' + fmt(p.value) + '</title></rect>');
        base += p.value;
      });
    });
    f.out.push('</svg>');
    return f.out.join('');
  }

  function num(v) { return typeof v === 'number' && isFinite(v); }

  /**
   * The per-round charts of rounds shaped like GET /api/rounds items ({roundId, status,
   * durationMs, cohortSize, included, metrics}), in any order.
   */
  function roundCharts(rounds) {
    var rs = rounds.filter(function (r) { return r.status !== 'running'; }).slice().sort(function (a, b) { return a.roundId - b.roundId; });
    var done = rs.filter(function (r) { return r.status === 'completed'; });
    var m = function (r, k) { return r.metrics && num(r.metrics[k]) ? r.metrics[k] : null; };
    var pts = function (list, k, div) {
      return list.filter(function (r) { return m(r, k) !== null; }).map(function (r) { return { x: r.roundId, y: div ? m(r, k) / div : m(r, k) }; });
    };
    var charts = [];
    charts.push({ id: 'loss', title: 'Mean local loss', svg: line('Mean local loss (included agents, example-weighted)', [{ name: 'loss', points: pts(done, 'loss') }], { none: 'no loss reported (secure rounds carry no per-agent loss)' }) });
    var timeBars = done.filter(function (r) { return num(r.durationMs); }).map(function (r) {
      var total = r.durationMs / 1000;
      var train = m(r, 'trainMs');
      if (train === null) return { x: r.roundId, parts: [{ name: 'round (training not reported)', value: total }] };
      var t = Math.min(total, train / 1000);
      return { x: r.roundId, parts: [{ name: 'training', value: t }, { name: 'rest', value: total - t }] };
    });
    charts.push({ id: 'time', title: 'Wall time', svg: stacked('Round wall time, s (training / rest)', ['training', 'rest', 'round (training not reported)'], timeBars) });
    var partBars = rs.map(function (r) {
      var inc = num(r.included) ? r.included : 0;
      return { x: r.roundId, parts: [{ name: 'included', value: inc }, { name: 'dropped', value: Math.max(0, r.cohortSize - inc) }] };
    });
    charts.push({ id: 'participants', title: 'Participants', svg: stacked('Participants and dropouts per round', ['included', 'dropped'], partBars) });
    charts.push({ id: 'eval', title: 'Evaluation', svg: line('Linear probe and kNN accuracy', [{ name: 'linear probe', points: pts(done, 'evalLinearProbe') }, { name: 'kNN', points: pts(done, 'evalKnn') }], { none: 'not evaluated (--eval-data DIR --eval-every K)' }) });
    charts.push({ id: 'epsilon', title: 'Privacy', svg: line('Epsilon spent (RDP accountant)', [{ name: 'epsilon', points: pts(done, 'dpEpsilon') }], { zero: true, none: 'differential privacy is off' }) });
    return charts;
  }

  return { line: line, stacked: stacked, roundCharts: roundCharts, esc: esc, fmt: fmt };
})();
