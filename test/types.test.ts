/** Type-level tests of the public surface (in the spirit of sharp's tsd): what a driver author's compiler sees. */
import { describe, expectTypeOf, it } from 'vitest';
import * as api from '../lib/index.js';
import type { CreateMacvtapOptions, LinkInfo, MacvtapMode, Netns, OpenTapOptions, SetLinkOptions } from '../lib/index.js';

describe('public types', () => {
  it('link operations take typed options and resolve typed info', () => {
    expectTypeOf(api.createMacvtap).parameter(0).toEqualTypeOf<CreateMacvtapOptions>();
    expectTypeOf(api.createMacvtap).returns.resolves.toEqualTypeOf<LinkInfo>();
    expectTypeOf(api.getLink).parameter(0).toEqualTypeOf<string | number>();
    expectTypeOf(api.listLinks).returns.resolves.toEqualTypeOf<LinkInfo[]>();
    expectTypeOf(api.setLink).parameter(1).toEqualTypeOf<SetLinkOptions>();
    expectTypeOf(api.setLink).returns.resolves.toEqualTypeOf<LinkInfo | null>();
    expectTypeOf(api.deleteGroup).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(api.deleteLink).returns.resolves.toEqualTypeOf<void>();
  });

  it('tap nodes, host shims and source-MAC edits are typed', () => {
    expectTypeOf(api.createTapNode).parameter(1).toEqualTypeOf<api.CreateTapNodeOptions>();
    expectTypeOf(api.createTapNode).returns.resolves.toEqualTypeOf<api.TapNode>();
    expectTypeOf<api.TapNode['remove']>().returns.resolves.toEqualTypeOf<void>();
    expectTypeOf(api.removeTapNode).returns.resolves.toEqualTypeOf<boolean>();
    expectTypeOf(api.createHostShim).parameter(0).toEqualTypeOf<api.CreateHostShimOptions>();
    expectTypeOf(api.createHostShim).returns.resolves.toEqualTypeOf<LinkInfo>();
    expectTypeOf<CreateMacvtapOptions['ipv6']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<api.GcResult['tapNodes']>().toEqualTypeOf<string[]>();
    // @ts-expect-error — one operation per change, and add takes one MAC
    const bad: SetLinkOptions = { sourceMacs: { add: ['02:00:00:00:00:01'] } };
    void bad;
    // @ts-expect-error — addresses are required
    const noAddr: api.CreateHostShimOptions = { lower: 'eth0' };
    void noAddr;
  });

  it('modes and namespaces are closed types', () => {
    expectTypeOf<MacvtapMode>().toEqualTypeOf<'bridge' | 'vepa' | 'private' | 'passthru' | 'source'>();
    expectTypeOf<Netns>().toEqualTypeOf<string | number>();
    expectTypeOf<CreateMacvtapOptions['mode']>().toEqualTypeOf<MacvtapMode | undefined>();
    // @ts-expect-error — not a mode
    const bad: CreateMacvtapOptions = { lower: 'eth0', mode: 'bridged' };
    void bad;
  });

  it('LinkInfo exposes the decoded fields with their nullability', () => {
    expectTypeOf<LinkInfo['tap']>().toEqualTypeOf<{ major: number; minor: number; path: string } | null>();
    expectTypeOf<LinkInfo['operstate']>().toEqualTypeOf<'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up'>();
    expectTypeOf<NonNullable<LinkInfo['macvlan']>['mode']>().toEqualTypeOf<MacvtapMode>();
    expectTypeOf<NonNullable<LinkInfo['lower']>['name']>().toEqualTypeOf<string | null>();
  });

  it('tap queues own an fd and hand it away explicitly', () => {
    expectTypeOf(api.openTap).parameter(1).toEqualTypeOf<OpenTapOptions | undefined>();
    expectTypeOf(api.openTap).returns.resolves.toEqualTypeOf<api.TapQueue[]>();
    expectTypeOf<api.TapQueue['fd']>().toEqualTypeOf<number>();
    expectTypeOf<api.TapQueue['detach']>().returns.toEqualTypeOf<number>();
    expectTypeOf<api.TapQueue['read']>().returns.resolves.toEqualTypeOf<Buffer | null>();
    expectTypeOf<api.TapQueue[typeof Symbol.dispose]>().toEqualTypeOf<() => void>();
  });

  it('QMP: a client with typed commands, events and errors; hot-plug takes the client', () => {
    expectTypeOf(api.connectQmp).returns.resolves.toEqualTypeOf<api.QmpClient>();
    expectTypeOf<api.QmpClient['execute']>().returns.toEqualTypeOf<Promise<unknown>>();
    expectTypeOf<api.QmpClient['waitEvent']>().returns.resolves.toEqualTypeOf<api.QmpEvent>();
    expectTypeOf<api.QmpError['class']>().toEqualTypeOf<string>();
    expectTypeOf<api.QmpError['desc']>().toEqualTypeOf<string>();
    expectTypeOf<api.QmpProtocolError['code']>().toEqualTypeOf<'ERR_QMP_NOT_QMP' | 'ERR_QMP_UNSUPPORTED' | 'ERR_QMP_PROTOCOL' | 'ERR_QMP_CLOSED' | 'ERR_QMP_TIMEOUT'>();
    expectTypeOf(api.attachMacvtap).parameter(0).toEqualTypeOf<api.QmpClient>();
    expectTypeOf(api.attachMacvtap).returns.resolves.toEqualTypeOf<api.MacvtapAttachment>();
    expectTypeOf(api.qemuNetdevArgs).returns.toEqualTypeOf<api.QemuNetdevArgs>();
  });

  it('errors carry the SystemError fields', () => {
    expectTypeOf<api.MacvtapError>().toMatchTypeOf<Error>();
    expectTypeOf<api.MacvtapError['code']>().toEqualTypeOf<string>();
    expectTypeOf<api.MacvtapError['errno']>().toEqualTypeOf<number>();
    expectTypeOf<api.MacvtapError['syscall']>().toEqualTypeOf<string>();
    expectTypeOf<api.MacvtapError['extack']>().toEqualTypeOf<string | undefined>();
  });
});
