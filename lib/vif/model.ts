/**
 * The Nova `macvtap` vif dictionary, typed and checked at run time by one zod schema.
 *
 * Neutron's macvtap mechanism driver hands Nova a dict whose `details` carry `macvtap_source` (the device the macvtap
 * sits on: the physical interface, or a VLAN sub-interface of it), `macvtap_mode`, `physical_interface` and, for VLAN
 * networks, `vlan`. The libvirt-macvtap-vif blueprint called the first two `macvtap_src` and `mode`; both spellings are
 * accepted here and normalized to Nova's.
 */
import { z } from 'zod';
import { InvalidVifError, VifDetailsMissingMacvtapParameters, type VifIssue } from './errors.js';

/** libvirt's macvtap modes (`<source mode>`), Nova's `macvtap_mode` values. The kernel calls `passthrough` `passthru`. */
export const VIF_MACVTAP_MODES = ['bridge', 'vepa', 'private', 'passthrough'] as const;

/** A macvtap mode as libvirt and Nova spell it. */
export type VifMacvtapMode = (typeof VIF_MACVTAP_MODES)[number];

/** The `details` keys a macvtap vif must have, in the order Nova checks them. */
export const REQUIRED_MACVTAP_DETAILS = ['macvtap_source', 'macvtap_mode', 'physical_interface'] as const;

/** Blueprint spelling → Nova spelling of `details` keys. */
export const DETAIL_ALIASES: Readonly<Record<string, (typeof REQUIRED_MACVTAP_DETAILS)[number]>> = {
  macvtap_src: 'macvtap_source',
  mode: 'macvtap_mode',
};

// Characters both the kernel (dev_valid_name: no '/', ':' or whitespace) and libvirt's RelaxNG `deviceName`
// ([a-zA-Z0-9_.\-\\:/]+) accept: anything else would be refused by one of them later, far from the cause.
const IFNAME_RE = /^[A-Za-z0-9_.\\-]+$/;

/**
 * A network device name valid for both the kernel and libvirt: 1–15 bytes of `[A-Za-z0-9_.\-\\]`, not `.` or `..`.
 */
export const ifnameSchema = z
  .string({ error: 'must be a string (a network device name)' })
  .min(1, { error: 'must not be empty' })
  .max(15, { error: 'must be at most 15 bytes (IFNAMSIZ)' })
  .regex(IFNAME_RE, { error: 'may only contain letters, digits, "_", ".", "-" and "\\" (kernel and libvirt device names)' })
  .refine((s) => s !== '.' && s !== '..', { error: 'must not be "." or ".."' });

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/**
 * A unicast, non-zero MAC address `aa:bb:cc:dd:ee:ff` (either case), normalized to lower case. Multicast addresses
 * (low bit of the first octet set) are refused, as both the kernel and libvirt's `uniMacAddr` refuse them.
 */
export const macSchema = z
  .string({ error: 'must be a string (a MAC address)' })
  .regex(MAC_RE, { error: 'must be a MAC address aa:bb:cc:dd:ee:ff' })
  .refine((s) => (parseInt(s.slice(0, 2), 16) & 1) === 0, { error: 'must be a unicast MAC address (first octet even)' })
  .refine((s) => s !== '00:00:00:00:00:00', { error: 'must not be all zero' })
  .transform((s) => s.toLowerCase());

/** An MTU the kernel accepts on an Ethernet device: 68–65535. */
export const mtuSchema = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be an integer' })
  .min(68, { error: 'must be at least 68 (the IPv4 minimum)' })
  .max(65535, { error: 'must be at most 65535' });

/** `schema`, also accepting `null` (Nova's `None`) as absent; keeps the inner schema's error messages. */
function nullable<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.optional());
}

const modeSchema = z
  .string({ error: `must be one of ${VIF_MACVTAP_MODES.join(', ')}` })
  // iproute2/kernel spelling accepted for convenience; libvirt and Nova say "passthrough".
  .transform((s) => (s === 'passthru' ? 'passthrough' : s))
  .pipe(z.enum(VIF_MACVTAP_MODES, { error: (i) => `unknown macvtap mode ${JSON.stringify(i.input)}: must be one of ${VIF_MACVTAP_MODES.join(', ')}` }));

// Neutron sends the segmentation id as a string; Nova treats any falsy value as "no VLAN".
const vlanSchema = z
  .union([z.number(), z.string().regex(/^[0-9]+$/, { error: 'must be a VLAN id (digits)' }).transform(Number)], {
    error: 'must be a VLAN id 1–4094 (number or digit string)',
  })
  .pipe(
    z
      .number()
      .int({ error: 'must be an integer VLAN id' })
      .min(1, { error: 'VLAN id must be in 1–4094' })
      .max(4094, { error: 'VLAN id must be in 1–4094' }),
  );

/** Copies `details`, moving blueprint spellings to Nova's and flagging a disagreement between the two. */
function resolveDetailAliases(input: unknown, ctx: z.RefinementCtx): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const out: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const [alias, canonical] of Object.entries(DETAIL_ALIASES)) {
    if (out[alias] === undefined) continue;
    if (out[canonical] === undefined) out[canonical] = out[alias];
    else if (out[canonical] !== out[alias]) {
      ctx.addIssue({
        code: 'custom',
        path: [alias],
        message: `disagrees with ${canonical} (${JSON.stringify(out[alias])} vs ${JSON.stringify(out[canonical])})`,
      });
    }
    delete out[alias];
  }
  return out;
}

const detailsSchema = z.preprocess(
  resolveDetailAliases,
  z.object(
    {
      /** The device the macvtap sits on (physical interface, or the VLAN device `plug` ensures). */
      macvtap_source: ifnameSchema,
      /** libvirt `<source mode>`. */
      macvtap_mode: modeSchema,
      /** The physical interface (the VLAN device's lower device). */
      physical_interface: ifnameSchema,
      /** 802.1Q VLAN id; when set, `macvtap_source` is a VLAN device on `physical_interface` that `plug` ensures. */
      vlan: nullable(vlanSchema),
    },
    { error: 'must be an object' },
  ),
);

const networkSchema = z.object(
  {
    id: z.string().optional(),
    /** Unused by macvtap, kept because Nova's dict has it. */
    bridge: z.union([z.null(), z.string()]).optional().transform((v) => v ?? undefined),
    label: z.string().optional(),
    meta: z
      .object({ mtu: nullable(mtuSchema) }, { error: 'must be an object' })
      .default({ mtu: undefined }),
    /** Not interpreted here (libvirt does not see subnets for a direct attachment). */
    subnets: z.array(z.unknown(), { error: 'must be an array' }).optional(),
  },
  { error: 'must be an object' },
);

const uint8 = z.number().int().min(0).max(255);
const uuidSchema = z
  .string()
  .regex(/^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})$/, { error: 'must be a UUID' });

/** 802.1Qbh port profile (Cisco VN-Link): `<virtualport type='802.1Qbh'><parameters profileid/>`. */
export const qbhParamsSchema = z.object({
  profileid: z
    .string({ error: 'must be a string' })
    .min(1, { error: 'must not be empty' })
    .max(39, { error: 'must be at most 39 characters (libvirt virtualPortProfileID)' })
    // Control characters cannot survive an XML attribute (parsers normalize them to spaces).
    .regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must not contain control characters (newline, tab, …)' }),
});

/** 802.1Qbg (VSI) parameters: `<virtualport type='802.1Qbg'><parameters managerid typeid typeidversion instanceid/>`. */
export const qbgParamsSchema = z.object({
  managerid: uint8.optional(),
  typeid: z.number().int().min(0).max(0xffffff).optional(),
  typeidversion: uint8.optional(),
  instanceid: uuidSchema.optional(),
});

/**
 * The vif schema. Unknown top-level keys (Nova's dict has many: `ovs_interfaceid`, `profile`, `active`, …) are
 * accepted and dropped.
 */
export const vifSchema = z.object(
  {
    /** Neutron port id. */
    id: z.string({ error: 'must be a string (the Neutron port id)' }).min(1, { error: 'must not be empty' }),
    /** The guest's MAC address. */
    address: macSchema,
    type: z.literal('macvtap', { error: (i) => `vif type must be "macvtap", not ${JSON.stringify(i.input)}` }),
    vnic_type: z
      .literal('normal', {
        error: (i) => `vnic_type must be "normal" for a macvtap vif (got ${JSON.stringify(i.input)}; SR-IOV vnic types are another vif type)`,
      })
      .optional()
      .transform(() => 'normal' as const),
    /** Nova's device name (`tap` + port id prefix); the self-managed macvtap's default name. */
    devname: nullable(ifnameSchema),
    network: networkSchema,
    details: detailsSchema,
    qbh_params: nullable(qbhParamsSchema),
    qbg_params: nullable(qbgParamsSchema),
  },
  { error: 'a vif must be an object' },
);

/** A vif dict as accepted (blueprint aliases, `null`s, numeric-string VLAN ids, unknown extra keys). */
export type VifInput = z.input<typeof vifSchema>;
/** A validated, normalized vif dict: Nova's key names, lower-case MAC, numeric VLAN, no `null`s. */
export type Vif = z.output<typeof vifSchema>;
/** The validated `details` of a {@link Vif}. */
export type VifDetails = Vif['details'];

/** Turns zod issues into {@link VifIssue}s with dotted paths. @internal */
export function toIssues(error: z.ZodError): VifIssue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/** Formats issues for an error message: `details.vlan: VLAN id must be in 1–4094; address: …`. @internal */
export function formatIssues(issues: VifIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

/** Recursively drops keys whose value is `undefined`, so parsed objects compare and serialize cleanly. @internal */
export function dropUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => dropUndefined(v)) as T;
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = dropUndefined(v);
  return out as T;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function missingDetails(input: unknown): string[] {
  if (!isPlainObject(input)) return [];
  const details = (input as { details?: unknown }).details;
  // No details object at all: every parameter is missing, as for Nova.
  const d = typeof details === 'object' && details !== null && !Array.isArray(details) ? (details as Record<string, unknown>) : {};
  return REQUIRED_MACVTAP_DETAILS.filter((key) => {
    const aliases = Object.keys(DETAIL_ALIASES).filter((a) => DETAIL_ALIASES[a] === key);
    return (d[key] === undefined || d[key] === null) && aliases.every((a) => d[a] === undefined || d[a] === null);
  });
}

/**
 * Validates and normalizes an untrusted vif dict (e.g. `JSON.parse` of what Neutron sent).
 *
 * @throws {@link VifDetailsMissingMacvtapParameters} when `details` lacks `macvtap_source`, `macvtap_mode` or
 *   `physical_interface` (under either spelling); its `issues` also list any other problem found.
 * @throws {@link InvalidVifError} for anything else (bad MAC, unknown mode, VLAN outside 1–4094, bad device names, …),
 *   with every problem in `issues`.
 */
export function parseVif(input: unknown): Vif {
  const id = typeof input === 'object' && input !== null && typeof (input as { id?: unknown }).id === 'string'
    ? (input as { id: string }).id
    : undefined;
  const missing = missingDetails(input);
  const result = vifSchema.safeParse(input);
  if (missing.length > 0) {
    const err = new VifDetailsMissingMacvtapParameters(id, missing);
    if (!result.success) {
      const missingPaths = new Set(missing.map((m) => `details.${m}`));
      err.issues.push(...toIssues(result.error).filter((i) => !missingPaths.has(i.path)));
    }
    throw err;
  }
  if (!result.success) {
    const issues = toIssues(result.error);
    throw new InvalidVifError(`invalid macvtap vif${id === undefined ? '' : ` ${id}`}: ${formatIssues(issues)}`, {
      ...(id === undefined ? {} : { vifId: id }),
      issues,
    });
  }
  return dropUndefined(result.data);
}

/** Kernel (`IFLA_MACVLAN_MODE`, iproute2) spelling of a libvirt/Nova macvtap mode. */
export function kernelMacvtapMode(mode: VifMacvtapMode): 'bridge' | 'vepa' | 'private' | 'passthru' {
  return mode === 'passthrough' ? 'passthru' : mode;
}
