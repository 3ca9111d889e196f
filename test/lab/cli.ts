/**
 * `chorus-kube-router lab ...`: the local lab as commands.
 *   up / status / add-node / remove-node / doctor / down    a lab left running in the background
 *   run                                            the same in the foreground (`make run`)
 *   apiserver, supervise                           internal: processes the lab starts
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, choiceSetting, durationMsSetting, helpText, intSetting, readSettings, type SettingSpec } from '../../shared/cli-args.ts';
import { createLogger, type Logger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import { sleep } from '../../shared/backoff.ts';
import { API_PORT, CONTROL_PLANE_IP, LAB_IP_FAMILIES, LAB_ROUTINGS, PREFIX_RE, newPrefix, type LabIpFamily, type LabRouting } from './addressing.ts';
import { DEFAULT_NAMESPACE } from '../../shared/keys.ts';
// the lab itself, the API server and the Kubernetes client load only for the commands that run them:
// the others (status, add-node, down, ...) talk to a running lab's supervisor and start in a fraction
import type { Lab, LabDocument, LabIpam } from './lab.ts';
import { controlRequest, serveControl } from './control.ts';
import { deleteAllWithPrefix, listNamespaces } from './netns.ts';
import { BUNDLE_PATH, CLI_PATH, cliArgs, isAlive, podCommand, type LabComponents } from './processes.ts';
import { reachabilityTable } from './report.ts';

const USAGE = `Usage: chorus-kube-router lab <command> [options]

Commands:
  up [--nodes N] [--pods-per-node M] [--device linux|citrix|f5] [--routing vxlan|direct|auto]
     [--coordinators K] [--ipam node|calico|cilium] [--ip-family ipv4|dual] [--json]
                      build the lab, wait until the overlay works, leave it running
  status [--json]     the running lab (the same JSON document as up, with current pids)
  add-node [--pods M] [--no-agent]
                      add a node; prints it as JSON when its pods answer from the device
  remove-node NAME    remove a node; prints {"removed": NAME}
  move-node NAME      (--routing auto) move a node onto the device's subnet or behind the router;
                      prints its new address
  doctor NODE [--json]
                      run \`chorus-kube-router doctor\` on a lab node, as in its agent pod: in the
                      node's network namespace, with NODE_NAME and the agent's ServiceAccount
  down [--all]        remove the lab (with --all: every lab and leftover lab namespace)
  run [--nodes N] [--pods-per-node M] [--once]
                      foreground: bring the lab up, print the reachability table, follow
                      changes until Ctrl-C (with --once: exit 0 only if every pod answers)

Options common to status/add-node/remove-node/move-node/down: --prefix P picks a lab when several run.
Labs live in $CHORUS_LAB_DIR (default ${defaultRoot()}).`;

function defaultRoot(): string {
  return join(tmpdir(), 'chorus-kube-router-lab');
}

function labRoot(): string {
  return process.env.CHORUS_LAB_DIR ?? defaultRoot();
}

interface StateFile { phase: 'starting' | 'ready' | 'failed'; progress: string; error?: string; supervisorPid: number; document?: LabDocument }

function readState(dir: string): StateFile | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as StateFile;
  } catch {
    return undefined;
  }
}

function writeState(dir: string, s: StateFile): void {
  writeFileSync(join(dir, 'state.json.tmp'), JSON.stringify(s, null, 2));
  renameSync(join(dir, 'state.json.tmp'), join(dir, 'state.json'));
}

const SIZE_SPECS: SettingSpec[] = [
  { flag: 'nodes', help: 'number of nodes', default: '3' },
  { flag: 'pods-per-node', help: 'simulated pods per node', default: '2' },
  { flag: 'device', help: 'external device: linux (runs gateway), citrix (the NITRO emulator) or f5 (the iControl REST emulator)', default: 'linux' },
  { flag: 'coordinators', help: 'coordinator replicas (leader elected)', default: '1' },
  { flag: 'ipam', help: "where pod CIDRs are published: node (spec.podCIDRs), calico (BlockAffinity), cilium (CiliumNode); the coordinator detects it", default: 'node' },
  { flag: 'timeout', help: 'how long to wait for the overlay to converge', default: '120s' },
  { flag: 'components', help: 'run coordinators, agents and the gateway from the TypeScript sources (as tests do) or from the bundle in dist/ (as the images do; make bundle builds it)', default: 'sources' },
  { flag: 'routing', help: "the coordinator's --routing: vxlan (every node tunneled), direct (every node routed via its own address; all share the device's subnet), auto (the even-numbered nodes sit behind a router namespace on 198.18.64.0/20 and are tunneled, the others are routed directly); see docs/routing.md", default: 'vxlan' },
  { flag: 'ip-family', help: 'ipv4, or dual: a dual-stack cluster (pods get an IPv6 address from 2001:db8:19::/48 beside their IPv4 one, the coordinator an IPv6 overlay network 2001:db8:c0::/64; the underlay stays IPv4), with any --device; or ipv6: the same over an IPv6 underlay 2001:db8:18::/64 (the VXLAN between the nodes and the device runs over IPv6; --device linux or f5, --routing vxlan)', default: 'ipv4' },
  { flag: 'second-instance', help: 'also run instance b (deploy/instance-b: VNI 100001, overlay 198.18.32.0/20) on the same nodes, programming a second device: citrix or f5 (renders the overlay with kubectl kustomize)' },
];

function sizeFrom(settings: Record<string, string | undefined>): { nodes: number; podsPerNode: number; coordinators: number; device: 'linux' | 'citrix' | 'f5'; timeoutMs: number; ipam: LabIpam; secondInstance?: 'citrix' | 'f5'; components: LabComponents; routing: LabRouting; ipFamily: LabIpFamily } {
  const components = choiceSetting(settings, 'components', ['sources', 'bundle'] as const);
  const ipFamily = choiceSetting(settings, 'ip-family', LAB_IP_FAMILIES);
  if (ipFamily === 'ipv6' && settings.device === 'citrix') throw new ConfigError('--ip-family ipv6 needs --device linux or f5: the Citrix driver programs IPv4 VTEPs only (see docs/citrix.md)');
  if (ipFamily === 'ipv6' && (settings.routing ?? 'vxlan') !== 'vxlan') throw new ConfigError('--ip-family ipv6 needs --routing vxlan: direct routing follows IPv4 InternalIPs only');
  if (components === 'bundle' && !existsSync(BUNDLE_PATH)) throw new ConfigError(`--components bundle: ${BUNDLE_PATH} does not exist; build it with "make bundle"`);
  return {
    components,
    ...(settings['second-instance'] ? { secondInstance: choiceSetting(settings, 'second-instance', ['citrix', 'f5'] as const) } : {}),
    nodes: intSetting(settings, 'nodes', 0, 256),
    podsPerNode: intSetting(settings, 'pods-per-node', 0, 250),
    coordinators: intSetting(settings, 'coordinators', 1, 5),
    device: choiceSetting(settings, 'device', ['linux', 'citrix', 'f5'] as const),
    timeoutMs: durationMsSetting(settings, 'timeout'),
    ipam: choiceSetting(settings, 'ipam', ['node', 'calico', 'cilium'] as const),
    routing: choiceSetting(settings, 'routing', LAB_ROUTINGS),
    ipFamily,
  };
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new ConfigError('the lab builds network namespaces and must run as root (try: sudo make run)');
}

/** Labs with a state file, newest first. */
function labDirs(): string[] {
  const root = labRoot();
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((n) => PREFIX_RE.test(n)).map((n) => join(root, n))
    .filter((d) => existsSync(join(d, 'state.json')))
    .sort((a, b) => (readState(b)?.supervisorPid ?? 0) - (readState(a)?.supervisorPid ?? 0));
}

function pickLab(prefix: string | undefined): string {
  if (prefix) {
    const dir = join(labRoot(), prefix);
    if (!existsSync(join(dir, 'state.json'))) throw new ConfigError(`no lab with prefix ${prefix} in ${labRoot()}`);
    return dir;
  }
  const running = labDirs().filter((d) => isAlive(readState(d)?.supervisorPid));
  if (running.length === 0) throw new ConfigError(`no lab is running (looked in ${labRoot()}); start one with "lab up"`);
  if (running.length > 1) throw new ConfigError(`${running.length} labs are running; pick one with --prefix (${running.map((d) => d.split('/').pop() ?? '').join(', ')})`);
  return running[0] ?? '';
}

async function runSupervisor(lab: Lab, log: Logger, onReady: (doc: LabDocument, rtt: Map<string, number | undefined>) => void, timeoutMs: number, exitAfterReady: boolean): Promise<number> {
  const dir = lab.opts.dir;
  let state: StateFile = { phase: 'starting', progress: 'starting', supervisorPid: process.pid };
  const progress = (msg: string): void => {
    state = { ...state, progress: msg };
    writeState(dir, state);
    process.stderr.write(`lab ${lab.opts.prefix}: ${msg}\n`);
  };
  let stopping: Promise<void> | undefined;
  let failed = false;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      process.stderr.write(`lab ${lab.opts.prefix}: removing the lab\n`);
      control?.close();
      await lab.destroy();
      if (!failed) rmSync(dir, { recursive: true, force: true });
      else {
        // keep the logs of a failed lab for the operator; remove everything else
        for (const f of readdirSync(dir)) if (f !== 'logs' && f !== 'state.json' && f !== 'supervisor.log') rmSync(join(dir, f), { recursive: true, force: true });
        process.stderr.write(`lab ${lab.opts.prefix}: logs kept in ${join(dir, 'logs')}\n`);
      }
    })();
    return stopping;
  };
  let control: Awaited<ReturnType<typeof serveControl>> | undefined;
  const onSignal = (): void => {
    void shutdown().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    writeState(dir, state);
    await lab.start(progress);
    control = await serveControl(lab, join(dir, 'control.sock'), () => void shutdown().then(() => process.exit(0)));
    const { doc, rtt } = await lab.waitConverged(progress, timeoutMs);
    state = { ...state, phase: 'ready', progress: 'ready', document: doc };
    writeState(dir, state);
    let writing = false;
    lab.onChange = () => {
      if (writing) return;
      writing = true;
      setTimeout(() => {
        void lab.document().then((d) => {
          writing = false;
          if (!stopping) writeState(dir, { ...state, document: d });
        });
      }, 200);
    };
    onReady(doc, rtt);
    if (exitAfterReady) {
      await shutdown();
      return 0;
    }
    return await new Promise<number>(() => undefined);
  } catch (err) {
    failed = true;
    state = { ...state, phase: 'failed', error: errorMessage(err) };
    if (existsSync(dir)) writeState(dir, state);
    log.error({ err: errorMessage(err) }, 'lab failed');
    process.stderr.write(`lab ${lab.opts.prefix}: FAILED: ${errorMessage(err)}\n`);
    await shutdown();
    return 1;
  }
}

async function newLab(settings: Record<string, string | undefined>, log: Logger, prefix = newPrefix()): Promise<{ lab: Lab; timeoutMs: number }> {
  const size = sizeFrom(settings);
  const dir = join(labRoot(), prefix);
  mkdirSync(dir, { recursive: true });
  const { Lab } = await import('./lab.ts');
  return { lab: new Lab({ ...size, dir, prefix, log }), timeoutMs: size.timeoutMs };
}

function labLogger(): Logger {
  return createLogger({ component: 'lab', level: process.env.CHORUS_LOG_LEVEL ?? 'warn' });
}

async function cmdRun(argv: readonly string[]): Promise<number> {
  const specs = [...SIZE_SPECS, { flag: 'once', help: 'exit after the table: 0 if every pod answers, 1 otherwise', bool: true }];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab run [options]', 'Brings the lab up in the foreground, prints which pods the device reaches, then follows changes.', specs);
  requireRoot();
  const log = labLogger();
  const { lab, timeoutMs } = await newLab(settings, log);
  const { followNodes } = await import('./follow.ts');
  return runSupervisor(lab, log, (doc, rtt) => {
    process.stdout.write(reachabilityTable(doc, rtt) + '\n');
    if (settings.once) return;
    process.stderr.write(`\nlab ${lab.opts.prefix}: following the cluster; try in another shell:\n` +
      `  npx chorus-kube-router lab add-node      npx chorus-kube-router lab remove-node node-1\n` +
      `  KUBECONFIG=${doc.kubeconfig} kubectl get nodes\n` +
      `  npx chorus-kube-router status --kubeconfig ${doc.kubeconfig}\n` +
      `  npx chorus-kube-router lab doctor node-1   (doctor on a node, as in its agent pod)\nCtrl-C removes the lab.\n`);
    followNodes(lab);
  }, timeoutMs, settings.once === 'true');
}

function printHelp(usage: string, description: string, specs: SettingSpec[]): number {
  console.log(helpText(usage, description, specs));
  return 0;
}

async function cmdSupervise(argv: readonly string[]): Promise<number> {
  const specs = [...SIZE_SPECS, { flag: 'prefix', help: 'lab prefix', required: true }];
  const { settings } = readSettings(argv, specs, process.env);
  const log = labLogger();
  const { lab, timeoutMs } = await newLab(settings, log, settings.prefix);
  return runSupervisor(lab, log, () => undefined, timeoutMs, false);
}

async function cmdUp(argv: readonly string[]): Promise<number> {
  const specs = [...SIZE_SPECS, { flag: 'json', help: 'print the lab as one JSON document', bool: true }];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab up [options]', 'Builds the lab, waits until every pod answers from the device, and leaves it running in the background.', specs);
  requireRoot();
  sizeFrom(settings);
  const prefix = newPrefix();
  const dir = join(labRoot(), prefix);
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'supervisor.log'), 'a');
  const args = ['--disable-warning=ExperimentalWarning', CLI_PATH, 'lab', 'supervise', '--prefix', prefix];
  for (const s of SIZE_SPECS) if (settings[s.flag] !== undefined) args.push(`--${s.flag}`, settings[s.flag] ?? '');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  let lastProgress = '';
  for (;;) {
    await sleep(200);
    const state = readState(dir);
    if (state && state.progress !== lastProgress && state.phase === 'starting') {
      process.stderr.write(`lab ${prefix}: ${state.progress}\n`);
      lastProgress = state.progress;
    }
    if (state?.phase === 'ready' && state.document) {
      const doc = (await controlRequest(join(dir, 'control.sock'), 'GET', '/status')) as LabDocument;
      process.stdout.write(settings.json ? JSON.stringify(doc, null, 2) + '\n' : `lab ${prefix} is up: ${doc.nodes.length} nodes; "lab status" shows it, "lab down" removes it\n`);
      return 0;
    }
    if (state?.phase === 'failed' || !isAlive(child.pid)) {
      const reason = state?.error ?? `the supervisor exited (see ${join(dir, 'supervisor.log')})`;
      process.stderr.write(`lab ${prefix}: FAILED: ${reason}\n`);
      return 1;
    }
  }
}

const PICK_SPECS: SettingSpec[] = [{ flag: 'prefix', help: 'which lab (when several run)' }];

async function cmdStatus(argv: readonly string[]): Promise<number> {
  const specs = [...PICK_SPECS, { flag: 'json', help: 'print JSON', bool: true }];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab status [--json]', 'Prints the running lab with current process ids.', specs);
  const dir = pickLab(settings.prefix);
  const doc = (await controlRequest(join(dir, 'control.sock'), 'GET', '/status')) as LabDocument;
  if (settings.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  else {
    const lab = { device: doc.device, nodes: doc.nodes };
    process.stdout.write(`lab ${doc.prefix}: API ${doc.apiServer.url}, kubeconfig ${doc.kubeconfig}\n` +
      `device ${lab.device.type} ${lab.device.underlayIP} overlay ${lab.device.overlayIPs.join(',')}\n` +
      lab.nodes.map((n) => `${n.name}  underlay ${n.underlayIP}  path ${n.path}  overlay ${n.overlayIP ?? '-'}  pods ${n.podCIDRs.join(',')} (${n.pods.length})  agent pid ${n.agentPid ?? '-'}`).join('\n') + '\n');
  }
  return 0;
}

async function cmdAddNode(argv: readonly string[]): Promise<number> {
  const specs = [...PICK_SPECS, { flag: 'pods', help: 'pods on the new node', default: '2' }, { flag: 'no-agent', help: 'create the node without starting its agent (prints it at once)', bool: true }];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab add-node [--pods M]', 'Adds a node (namespace, pods, Node object, agent) and prints it as JSON once its pods answer from the device (at every address: both families in a dual-stack lab).', specs);
  const pods = intSetting(settings, 'pods', 0, 250);
  const dir = pickLab(settings.prefix);
  const sock = join(dir, 'control.sock');
  const noAgent = settings['no-agent'] === 'true';
  const node = (await controlRequest(sock, 'POST', `/nodes?pods=${pods}${noAgent ? '&agent=false' : ''}`)) as { name: string };
  if (noAgent) {
    process.stdout.write(JSON.stringify(node, null, 2) + '\n');
    return 0;
  }
  // wait for the overlay to carry its pods
  const deadline = Date.now() + 60_000;
  for (;;) {
    const doc = (await controlRequest(sock, 'GET', '/status')) as LabDocument;
    const n = doc.nodes.find((x) => x.name === node.name);
    if (n && n.overlayIP !== null && (await podsAnswer(doc, n.pods.flatMap((p) => p.ips)))) {
      process.stdout.write(JSON.stringify(n, null, 2) + '\n');
      return 0;
    }
    if (Date.now() > deadline) throw new Error(`node ${node.name} was added but its pods did not answer from the device within 60 s`);
    await sleep(200);
  }
}

async function podsAnswer(doc: LabDocument, ips: string[]): Promise<boolean> {
  const { ping } = await import('./netns.ts');
  const r = await Promise.all(ips.map((ip) => ping(doc.device.netns, ip)));
  return r.every((v) => v !== undefined);
}

async function cmdRemoveNode(argv: readonly string[]): Promise<number> {
  const { settings, help, positionals } = readSettings(argv, PICK_SPECS, process.env);
  if (help) return printHelp('chorus-kube-router lab remove-node NAME', 'Removes a node: its agent, Node object, namespaces and pods.', PICK_SPECS);
  const name = positionals[0];
  if (!name) throw new ConfigError('lab remove-node needs the node name, e.g. "lab remove-node node-2"');
  const dir = pickLab(settings.prefix);
  const r = await controlRequest(join(dir, 'control.sock'), 'DELETE', `/nodes/${encodeURIComponent(name)}`);
  process.stdout.write(JSON.stringify(r) + '\n');
  return 0;
}

async function cmdMoveNode(argv: readonly string[]): Promise<number> {
  const { settings, help, positionals } = readSettings(argv, PICK_SPECS, process.env);
  if (help) return printHelp('chorus-kube-router lab move-node NAME', "Moves a node to the other subnet in a --routing auto lab (onto the device's subnet, or behind the router): new link and address first, then the Node's InternalIP, then the old link once the device routes the new way. Prints the node's new address and segment.", PICK_SPECS);
  const name = positionals[0];
  if (!name) throw new ConfigError('lab move-node needs the node name, e.g. "lab move-node node-2"');
  const dir = pickLab(settings.prefix);
  const r = await controlRequest(join(dir, 'control.sock'), 'POST', `/nodes/${encodeURIComponent(name)}/move`, 60_000);
  process.stdout.write(JSON.stringify(r) + '\n');
  return 0;
}

async function cmdDoctor(argv: readonly string[]): Promise<number> {
  const specs = [...PICK_SPECS, { flag: 'json', help: 'print the results as JSON', bool: true }];
  const { settings, help, positionals } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab doctor NODE [--json]', "Runs doctor on a lab node as `kubectl exec` in its agent pod would: in the node's network namespace, with NODE_NAME set and the agent's ServiceAccount (in-cluster configuration).", specs);
  const name = positionals[0];
  if (!name) throw new ConfigError('lab doctor needs the node name, e.g. "lab doctor node-1"');
  const dir = pickLab(settings.prefix);
  const doc = (await controlRequest(join(dir, 'control.sock'), 'GET', '/status')) as LabDocument;
  const node = doc.nodes.find((n) => n.name === name);
  if (!node) throw new ConfigError(`no lab node named "${name}" (nodes: ${doc.nodes.map((n) => n.name).join(', ') || 'none'})`);
  const spec = {
    name: 'doctor', netns: node.netns, args: [], logFile: '',
    serviceAccount: { dir: join(doc.dir, 'serviceaccounts', 'agent'), host: CONTROL_PLANE_IP, port: API_PORT },
    env: { NODE_NAME: name, POD_NAMESPACE: DEFAULT_NAMESPACE, CHORUS_AGENT_URL: node.agentHealthURL.replace(/\/healthz$/, '') },
  };
  const { command, args, env } = podCommand(spec, process.execPath, cliArgs(['doctor', ...(settings.json === 'true' ? ['--json'] : [])], doc.components));
  const child = spawn(command, args, { stdio: 'inherit', env });
  return new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

/** Stops a lab's supervisor, then makes sure no process, namespace or file of it is left. */
async function removeLab(dir: string): Promise<void> {
  const prefix = dir.split('/').pop() ?? '';
  const state = readState(dir);
  const pid = state?.supervisorPid;
  if (isAlive(pid)) {
    await controlRequest(join(dir, 'control.sock'), 'POST', '/shutdown', 10_000).catch(() => {
      if (pid) process.kill(pid, 'SIGTERM');
    });
    const deadline = Date.now() + 30_000;
    while (isAlive(pid) && Date.now() < deadline) await sleep(100);
    if (isAlive(pid) && pid) process.kill(pid, 'SIGKILL');
  }
  // a supervisor that died hard leaves its children and namespaces: remove them too
  const doc = state?.document;
  const pids = doc ? [doc.apiServer.pid, doc.device.pid, ...doc.coordinators.map((c) => c.pid), ...doc.nodes.map((n) => n.agentPid)] : [];
  for (const p of pids) if (p && isAlive(p)) process.kill(p, 'SIGKILL');
  await deleteAllWithPrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
}

async function cmdDown(argv: readonly string[]): Promise<number> {
  const specs = [...PICK_SPECS, { flag: 'all', help: 'remove every lab and any leftover lab namespace', bool: true }];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab down [--prefix P] [--all]', 'Removes the lab: processes, namespaces and files.', specs);
  requireRoot();
  const dirs = settings.all ? labDirs() : [pickLabForDown(settings.prefix)];
  for (const d of dirs) {
    await removeLab(d);
    process.stderr.write(`lab ${d.split('/').pop() ?? ''}: removed\n`);
  }
  if (settings.all) {
    // namespaces of labs whose supervisor is gone (killed test runs); never those of a live lab
    const live = liveLabPrefixes();
    const all = (await listNamespaces()).filter((n) => /^ckr[0-9a-f]{5}-/.test(n));
    // a lab run in the foreground (`lab run`, a test's lab in its own root) has no supervise
    // process to find: a prefix with any process in one of its namespaces is live too
    for (const n of all) if (!live.has(n.split('-')[0] ?? '') && (await namespaceHasProcesses(n))) live.add(n.split('-')[0] ?? '');
    const leftovers = all.filter((n) => !live.has(n.split('-')[0] ?? ''));
    const prefixes = [...new Set(leftovers.map((n) => n.split('-')[0] ?? ''))];
    for (const p of prefixes) await deleteAllWithPrefix(p);
    if (leftovers.length > 0) process.stderr.write(`removed ${leftovers.length} leftover lab namespace(s) of ${prefixes.join(', ')}\n`);
  }
  return 0;
}

/**
 * Prefixes of labs whose supervisor is alive: in this lab root and the default one, and any other
 * (another test run's own root, run beside this one) found by its supervisor's command line
 * (`lab supervise --prefix <prefix>`), so a sweep never removes a live lab it did not start.
 */
function liveLabPrefixes(): Set<string> {
  const live = new Set<string>();
  for (const root of new Set([labRoot(), defaultRoot()])) {
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root)) {
      if (PREFIX_RE.test(name) && isAlive(readState(join(root, name))?.supervisorPid)) live.add(name);
    }
  }
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    const i = args.indexOf('supervise');
    if (i > 0 && args[i - 1] === 'lab' && args[i + 1] === '--prefix' && PREFIX_RE.test(args[i + 2] ?? '')) live.add(args[i + 2] ?? '');
  }
  return live;
}

/** Whether any process runs in network namespace `netns` (`ip netns pids`). */
async function namespaceHasProcesses(netns: string): Promise<boolean> {
  const r = await execa('ip', ['netns', 'pids', netns], { reject: false });
  return r.exitCode === 0 && String(r.stdout).trim() !== '';
}

function pickLabForDown(prefix: string | undefined): string {
  if (prefix) return join(labRoot(), prefix);
  const all = labDirs();
  const running = all.filter((d) => isAlive(readState(d)?.supervisorPid));
  const pick = running.length > 0 ? running : all;
  if (pick.length === 0) throw new ConfigError(`no lab found in ${labRoot()}`);
  if (pick.length > 1) throw new ConfigError(`${pick.length} labs found; pick one with --prefix or use --all`);
  return pick[0] ?? '';
}

/** A device emulator as `lab` runs it: one per device namespace, whose data plane is that namespace. */
interface DeviceEmulatorSetup {
  readonly command: string;
  readonly description: string;
  readonly extraSpecs?: readonly SettingSpec[];
  create(a: { settings: Record<string, string | undefined>; username: string; password: string; tls: { cert: Buffer; key: Buffer }; onChange: () => void }): Promise<{
    emulator: { listen(host: string, port: number): Promise<number>; close(): Promise<void> };
    dataPlane: Parameters<typeof import('../emulators/dataplane-sync.ts').dataPlaneSyncer>[0];
  }>;
}

async function runDeviceEmulator(argv: readonly string[], setup: DeviceEmulatorSetup): Promise<number> {
  const specs: SettingSpec[] = [
    { flag: 'listen', help: 'host:port', required: true }, { flag: 'tls-dir', help: 'directory with server.crt and server.key', required: true },
    { flag: 'credentials-dir', help: 'directory with username and password', required: true },
    ...(setup.extraSpecs ?? []),
  ];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp(`chorus-kube-router lab ${setup.command} --listen HOST:PORT ...`, setup.description, specs);
  const { dataPlaneSyncer } = await import('../emulators/dataplane-sync.ts');
  const { readTls } = await import('../emulators/tls.ts');
  const { ipRoute } = await import('../../shared/iproute.ts');
  const log = createLogger({ component: setup.command });
  const dir = settings['tls-dir'] ?? '';
  const cred = (f: string): string => readFileSync(join(settings['credentials-dir'] ?? '', f), 'utf8').trim();
  let sync: () => void = () => undefined;
  const { emulator, dataPlane } = await setup.create({
    settings, username: cred('username'), password: cred('password'),
    tls: readTls({ caFile: join(dir, 'ca.crt'), certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') }), onChange: () => sync(),
  });
  sync = dataPlaneSyncer(dataPlane, ipRoute(), log);
  const [host, port] = (settings.listen ?? '').split(':');
  await emulator.listen(host ?? '0.0.0.0', Number(port));
  log.info({ listen: settings.listen }, `${setup.command} listening`);
  const stop = (): void => void emulator.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
}

/** The lab ADC's management address as `GET nsip` lists it (not configured on an interface). */
const LAB_ADC_NSIP = '198.18.0.4';

const cmdNitroEmulator = (argv: readonly string[]): Promise<number> => runDeviceEmulator(argv, {
  command: 'nitro-emulator',
  description: 'The NITRO emulator (lab and tests only): a Citrix ADC whose data plane is this network namespace.',
  extraSpecs: [{ flag: 'snip', help: 'the VTEP SNIP the operator configured, ip/prefix' }],
  async create({ settings, username, password, tls, onChange }) {
    const { NitroEmulator } = await import('../emulators/nitro/server.ts');
    const { nitroDataPlane } = await import('../emulators/nitro/dataplane.ts');
    const { formatIPv4, maskOf } = await import('../../shared/ipv4.ts');
    const emulator = new NitroEmulator({ username, password, tls, onChange, hostname: LAB_ADC_NSIP });
    // the lab ADC's own NSIP and default route are listed as a real ADC lists them (management is
    // reached on the VTEP SNIP, which has management access, as docs/citrix.md allows)
    emulator.store.setSystem({ nsip: { ipaddress: LAB_ADC_NSIP, netmask: '255.255.240.0' }, defaultGateway: '198.18.0.1' });
    if (settings.snip) {
      const [ip = '', prefix = '32'] = settings.snip.split('/');
      emulator.store.add('nsip', { ipaddress: ip, netmask: formatIPv4(maskOf(Number(prefix))), type: 'SNIP' });
    }
    return { emulator, dataPlane: nitroDataPlane(emulator.store) };
  },
});

const cmdF5Emulator = (argv: readonly string[]): Promise<number> => runDeviceEmulator(argv, {
  command: 'f5-emulator',
  description: 'The iControl REST emulator (lab and tests only): an F5 BIG-IP whose data plane is this network namespace.',
  extraSpecs: [
    { flag: 'tmos-version', help: 'the TMOS version it answers as: 12.1.x answers FDB records inline, 14.1 and later as a sub-collection', default: '17.1.0' },
    { flag: 'self', help: 'the VTEP self IP the operator configured on VLAN /Common/external, ip/prefix' },
    { flag: 'self6', help: 'an IPv6 VTEP self IP on VLAN /Common/external (an IPv6 underlay), ip/prefix' },
  ],
  async create({ settings, username, password, tls, onChange }) {
    const { IControlEmulator } = await import('../emulators/icontrol/server.ts');
    const { bigIpDataPlane } = await import('../emulators/icontrol/dataplane.ts');
    const tmosVersion = settings['tmos-version'] ?? '17.1.0';
    if (!/^\d+\.\d+(\.\d+)?$/.test(tmosVersion)) throw new ConfigError(`--tmos-version ${JSON.stringify(tmosVersion)} is not a version such as 12.1.0 or 17.1.0`);
    const emulator = new IControlEmulator({ username, password, tls, onChange, tmosVersion });
    if (settings.self) emulator.store.create('net/self', { name: 'vtep', partition: 'Common', address: settings.self, vlan: '/Common/external', allowService: 'none', trafficGroup: '/Common/traffic-group-local-only' });
    if (settings.self6) emulator.store.create('net/self', { name: 'vtep6', partition: 'Common', address: settings.self6, vlan: '/Common/external', allowService: 'none', trafficGroup: '/Common/traffic-group-local-only' });
    return { emulator, dataPlane: bigIpDataPlane(() => emulator.store) };
  },
});

async function cmdApiServer(argv: readonly string[]): Promise<number> {
  const specs: SettingSpec[] = [
    { flag: 'listen', help: 'host:port', required: true }, { flag: 'socket', help: 'unix socket path' },
    { flag: 'tls-dir', help: 'directory with server.crt and server.key (HTTPS only)', required: true },
    { flag: 'token-file', help: 'bearer token file', required: true }, { flag: 'state-file', help: 'file the objects are saved to' },
    { flag: 'crds', help: 'custom resources to serve: calico, cilium (comma-separated)' },
    { flag: 'users-file', help: 'JSON {token: user} of more identities (one per component)' },
    { flag: 'audit-file', help: 'file every request is appended to, one JSON line each (verb, resource, namespace, name, user)' },
  ];
  const { settings, help } = readSettings(argv, specs, process.env);
  if (help) return printHelp('chorus-kube-router lab apiserver --listen HOST:PORT --token-file F', 'The embedded Kubernetes API server (lab and tests only).', specs);
  const token = readFileSync(settings['token-file'] ?? '', 'utf8').trim();
  const crds = (settings.crds ?? '').split(',').filter((c): c is 'calico' | 'cilium' => c === 'calico' || c === 'cilium');
  const users = settings['users-file'] ? (JSON.parse(readFileSync(settings['users-file'], 'utf8')) as Record<string, string>) : undefined;
  const auditFile = settings['audit-file'];
  const tlsDir = settings['tls-dir'] ?? '';
  const { EmbeddedApiServer } = await import('../apiserver/server.ts');
  const server = new EmbeddedApiServer({
    tls: { cert: readFileSync(join(tlsDir, 'server.crt')), key: readFileSync(join(tlsDir, 'server.key')) },
    token, crds, ...(settings['state-file'] ? { stateFile: settings['state-file'] } : {}), ...(users ? { users } : {}),
    ...(auditFile ? { onAudit: (r) => appendFileSync(auditFile, `${JSON.stringify(r)}\n`) } : {}),
  });
  const [host, port] = (settings.listen ?? '').split(':');
  await server.listen(host ?? '127.0.0.1', Number(port));
  if (settings.socket) await server.listenUnix(settings.socket);
  const log = createLogger({ component: 'apiserver' });
  log.info({ listen: settings.listen, socket: settings.socket }, 'embedded API server listening');
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<number>(() => undefined);
}

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  up: cmdUp, status: cmdStatus, 'add-node': cmdAddNode, 'remove-node': cmdRemoveNode, 'move-node': cmdMoveNode, doctor: cmdDoctor, down: cmdDown, run: cmdRun,
  apiserver: cmdApiServer, supervise: cmdSupervise, 'nitro-emulator': cmdNitroEmulator, 'f5-emulator': cmdF5Emulator,
};

export async function labMain(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  const run = COMMANDS[cmd];
  if (!run) throw new ConfigError(`unknown lab command "${cmd}"\n\n${USAGE}`);
  return run(rest);
}
