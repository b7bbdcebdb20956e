/**
 * Reading `tc`'s own view of a device (the independent oracle of the bandwidth tests): iproute2 6.1 prints htb classes
 * and the police action's rate/burst only as text, even with -j, so these parse tc's text units.
 */

/** tc's bit-rate units (multiples of 1000) and byte-size units (multiples of 1024). */
const BITS: Record<string, number> = { bit: 1, Kbit: 1e3, Mbit: 1e6, Gbit: 1e9 };
const BYTES: Record<string, number> = { b: 1, Kb: 1024, Mb: 1024 * 1024 };

/** tc's printed rate ("8Mbit") in bytes/s, or a number tc printed as one. */
export function tcRate(v: unknown): number {
  if (typeof v === 'number') return v;
  const m = String(v).match(/^([\d.]+)(\w+)$/);
  return m ? Math.round((Number(m[1]) * (BITS[m[2]!] ?? NaN)) / 8) : NaN;
}

/** tc's printed size ("64Kb") in bytes. */
export function tcSize(v: unknown): number {
  if (typeof v === 'number') return v;
  const m = String(v).match(/^([\d.]+)(\w+)$/);
  return m ? Math.round(Number(m[1]) * (BYTES[m[2]!] ?? NaN)) : NaN;
}

/** One htb class of `tc class show`: rate and ceil in bytes/s, burst and cburst in bytes. */
export interface TcClass {
  kind: string;
  handle: string;
  parent: string;
  rate: number;
  ceil: number;
  burst: number;
  cburst: number;
}

/** The classes of `tc class show dev DEV`'s text (`text` is that command's output). */
export function tcClasses(text: string): TcClass[] {
  return text.split('\n').filter((l) => l.startsWith('class ')).map((l) => {
    const f = (k: string): RegExpMatchArray => l.match(new RegExp(` ${k} ([\\d.]+)(\\w+)`)) ?? ['', '0', 'b'];
    const rate = (k: string): number => tcRate(`${f(k)[1]}${f(k)[2]}`);
    const size = (k: string): number => tcSize(`${f(k)[1]}${f(k)[2]}`);
    const w = l.split(' ');
    return { kind: w[1]!, handle: w[2]!, parent: w[3] === 'root' ? 'root' : w[4]!, rate: rate('rate'), ceil: rate('ceil'), burst: size('burst'), cburst: size('cburst') };
  });
}

/** The first police action in `tc filter show dev DEV ingress`'s text: rate in bytes/s, burst in bytes, its verdict. */
export function tcPolice(text: string): { rate: number; burst: number; action: string } | null {
  const m = text.match(/police \S+ rate (\S+) burst (\S+)(?: mtu (\S+))?.*? action (\w+)/s);
  return m ? { rate: tcRate(m[1]), burst: tcSize(m[2]), action: m[4]! } : null;
}
