// The fedclr command line.
import { adminCommand, adminHelp } from './commands/admin.js';
import { agentCommand, agentHelp } from './commands/agent.js';
import { agentHostCommand, agentHostHelp } from './commands/agent-host.js';
import { classifyCommand, classifyHelp } from './commands/classify.js';
import { coordinatorCommand, coordinatorHelp } from './commands/coordinator.js';
import { embedCommand, embedHelp } from './commands/embed.js';
import { evalCommand, evalHelp } from './commands/eval.js';
import { partitionCommand, partitionHelp } from './commands/partition.js';
import { probeCommand, probeHelp } from './commands/probe.js';
import { searchCommand, searchHelp } from './commands/search.js';
import { simulateCommand, simulateHelp } from './commands/simulate.js';
import { trainCommand, trainHelp } from './commands/train.js';
import { UnknownCommandError } from './errors.js';

type Command = (argv: string[], out: (line: string) => void, log: (line: string) => void) => Promise<number>;

const commands: Record<string, { run: Command; help: string }> = {
  train: { run: trainCommand, help: trainHelp },
  eval: { run: evalCommand, help: evalHelp },
  embed: { run: embedCommand, help: embedHelp },
  search: { run: searchCommand, help: searchHelp },
  probe: { run: probeCommand, help: probeHelp },
  classify: { run: classifyCommand, help: classifyHelp },
  coordinator: { run: coordinatorCommand, help: coordinatorHelp },
  agent: { run: agentCommand, help: agentHelp },
  'agent-host': { run: agentHostCommand, help: agentHostHelp },
  simulate: { run: simulateCommand, help: simulateHelp },
  admin: { run: adminCommand, help: adminHelp },
  partition: { run: partitionCommand, help: partitionHelp },
};

const usage = `fedclr <command> [options]

commands:
${Object.values(commands).map((c) => c.help.split('\n')[0]).join('\n')}

Run \`fedclr <command> --help\` for its options.`;

export async function main(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`), log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  try {
    if (command === undefined) throw new UnknownCommandError(name, Object.keys(commands).join(', '));
    if (rest.includes('--help') || rest.includes('-h')) {
      out(command.help);
      return 0;
    }
    return await command.run(rest, out, log);
  } catch (err) {
    const e = err as Error & { code?: string };
    log(`fedclr ${name}: ${e.code ? `[${e.code}] ` : ''}${e.message}`);
    if (process.env.FEDCLR_DEBUG) log(e.stack ?? '');
    return e.code?.startsWith('ERR_PARSE_ARGS') || e.code === 'FEDCLR_CLI_USAGE' ? 2 : 1;
  }
}
