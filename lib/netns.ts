/** Network namespace helpers. */

/**
 * The path `ip netns add NAME` makes for a named namespace, which every `netns` option accepts.
 *
 * @example
 * ```ts
 * await listLinks({ netns: netnsPath('guest0') });
 * ```
 */
export function netnsPath(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,255}$/.test(name) || name === '.' || name === '..') {
    const err = new TypeError(`The "name" argument must be a namespace name (letters, digits, "_", ".", "-"). Received ${JSON.stringify(name)}`);
    (err as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return `/run/netns/${name}`;
}
