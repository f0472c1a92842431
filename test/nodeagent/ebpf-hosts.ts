// A minimal node with two pods for the eBPF datapath's own packet checks: a
// node namespace, and one namespace per pod joined to it by a veth pair, with
// static routes and neighbours (no ARP, no host routes or sysctls touched:
// ip_forward is set inside the node namespace only). The "lab" helper builds
// the full test hosts; this stays small on purpose.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args)).stdout;
}

export interface Pod {
  name: string;
  ip: string;
  netns: string;
  /** host-side veth in the node namespace */
  hostVeth: string;
}

export interface TwoPodNode {
  node: string;
  pods: Pod[];
  /** Starts TCP listeners in a pod that accept and answer "ok". */
  listen(pod: Pod, ports: number[]): Promise<void>;
  /** One TCP connection attempt from a pod: "connected", "refused" or "timeout". */
  connect(from: Pod, to: string, port: number, timeoutMs?: number): Promise<string>;
  /** Removes every namespace (their veths and tc filters go with them) and listener. */
  cleanup(): Promise<void>;
}

const LINK_LOCAL_GW = '169.254.1.1';

async function mac(netns: string, dev: string): Promise<string> {
  const links = JSON.parse(await ip('-j', '-n', netns, 'link', 'show', 'dev', dev)) as {
    address: string;
  }[];
  return links[0]!.address;
}

export async function twoPodNode(runId: string, podIps: [string, string]): Promise<TwoPodNode> {
  const node = `mp-${runId}-node`;
  const made: string[] = [];
  const children: ChildProcess[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    for (const ns of made.splice(0).reverse()) await ip('netns', 'del', ns).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', node);
    made.push(node);
    await run('ip', ['netns', 'exec', node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await ip('-n', node, 'link', 'set', 'lo', 'up');
    const pods: Pod[] = [];
    for (const [i, podIp] of podIps.entries()) {
      const name = String.fromCharCode(97 + i);
      const netns = `mp-${runId}-${name}`;
      const hostVeth = `h${runId.slice(-8)}${name}`;
      await ip('netns', 'add', netns);
      made.push(netns);
      await ip(
        '-n',
        node,
        'link',
        'add',
        hostVeth,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        netns,
      );
      await ip('-n', node, 'link', 'set', hostVeth, 'up');
      await ip('-n', netns, 'link', 'set', 'lo', 'up');
      await ip('-n', netns, 'link', 'set', 'eth0', 'up');
      await ip('-n', netns, 'addr', 'add', `${podIp}/32`, 'dev', 'eth0');
      await ip('-n', netns, 'route', 'add', LINK_LOCAL_GW, 'dev', 'eth0', 'scope', 'link');
      await ip('-n', netns, 'route', 'add', 'default', 'via', LINK_LOCAL_GW, 'dev', 'eth0');
      const hostMac = await mac(node, hostVeth);
      const podMac = await mac(netns, 'eth0');
      await ip(
        '-n',
        netns,
        'neigh',
        'add',
        LINK_LOCAL_GW,
        'lladdr',
        hostMac,
        'dev',
        'eth0',
        'nud',
        'permanent',
      );
      await ip('-n', node, 'route', 'add', `${podIp}/32`, 'dev', hostVeth);
      await ip(
        '-n',
        node,
        'neigh',
        'add',
        podIp,
        'lladdr',
        podMac,
        'dev',
        hostVeth,
        'nud',
        'permanent',
      );
      pods.push({ name, ip: podIp, netns, hostVeth });
    }
    return {
      node,
      pods,
      listen: async (pod, ports) => {
        const script = `const net=require('net');let n=0;for(const p of ${JSON.stringify(ports)})net.createServer(s=>{s.on('error',()=>{});s.end('ok')}).listen(p,'0.0.0.0',()=>{if(++n===${ports.length})console.log('listening')});`;
        const child = spawn('ip', ['netns', 'exec', pod.netns, process.execPath, '-e', script], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.push(child);
        await new Promise<void>((resolve, reject) => {
          child.stdout.once('data', () => resolve());
          child.once('exit', (code) =>
            reject(new Error(`listener in ${pod.netns} exited ${code}`)),
          );
        });
      },
      connect: async (from, to, port, timeoutMs = 1500) => {
        const script = `const s=require('net').connect({host:${JSON.stringify(to)},port:${port}});const t=setTimeout(()=>{console.log('timeout');process.exit(0)},${timeoutMs});s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',e=>{console.log(e.code==='ECONNREFUSED'?'refused':'error '+e.code);process.exit(0)});`;
        const { stdout } = await run('ip', [
          'netns',
          'exec',
          from.netns,
          process.execPath,
          '-e',
          script,
        ]);
        return stdout.trim();
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
