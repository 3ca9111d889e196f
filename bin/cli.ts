/**
 * chorus-kube-router: one CLI for every role. The lab (embedded API server, network-namespace
 * topology, emulators) lives under test/ and is loaded only for `lab`, so images need not ship it.
 */
import { enableCompileCache } from 'node:module';
import { ConfigError } from '../shared/cli-args.ts';
import { errorMessage } from '../shared/errors.ts';

const USAGE = `Usage: chorus-kube-router <command> [options]

Commands:
  coordinator   allocate overlay addresses, publish the peer table, program the device
  agent         program this node's VXLAN endpoint and keep it right (DaemonSet)
  gateway       be the Linux device: program routes/FDB/ARP toward every node
  status        print the overlay as the cluster publishes it (hub info, every node)
  doctor        check this node's side of the overlay, with a fix for each fault
  lab           run the whole system locally in network namespaces (up, status, down, ...)

Run "chorus-kube-router <command> --help" for a command's options.`;

// V8's on-disk code cache (in the OS temp dir unless NODE_COMPILE_CACHE says otherwise): an agent
// or coordinator that restarts, or a node that joins, starts in about half the time
enableCompileCache();

type Main = (argv: readonly string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Main>> = {
  coordinator: async () => (await import('../coordinator/main.ts')).coordinatorMain,
  agent: async () => (await import('../agent/main.ts')).agentMain,
  gateway: async () => (await import('../agent/gateway/main.ts')).gatewayMain,
  status: async () => (await import('../coordinator/status-command.ts')).statusMain,
  doctor: async () => (await import('../agent/doctor/main.ts')).doctorMain,
  lab: async () => (await import('../test/lab/cli.ts')).labMain,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const load = COMMANDS[command];
  if (!load) {
    console.error(`chorus-kube-router: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`chorus-kube-router: ${err.message}`);
      process.exit(2);
    }
    console.error(`chorus-kube-router: ${errorMessage(err)}`);
    if (err instanceof Error && err.stack && process.env.CHORUS_DEBUG) console.error(err.stack);
    process.exit(1);
  },
);
