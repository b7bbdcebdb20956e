/**
 * Errors of the vif layer. Every refusal of a vif, an option or an XML document is one of these, raised before any
 * XML is produced and before the kernel is touched; kernel refusals met while plugging are wrapped in
 * {@link VifPlugError} with the core's `MacvtapError` as `cause`.
 */

/** One problem found in an input: where (a dotted path such as `details.vlan`) and what. */
export interface VifIssue {
  /** Dotted path of the offending field (`''` for the object itself). */
  path: string;
  /** What is wrong with it. */
  message: string;
}

/** Base class of the vif layer's errors. `code` is stable and machine-readable (`ERR_VIF_…`). */
export class VifError extends Error {
  /** Stable error code, e.g. `'ERR_VIF_INVALID'`. */
  readonly code: string;
  /** The vif's `id`, when it was known. */
  readonly vifId: string | undefined;
  /** Every problem found (an invalid vif usually has more than one). */
  readonly issues: VifIssue[];

  /** @internal */
  constructor(code: string, message: string, opts: { vifId?: string; issues?: VifIssue[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.vifId = opts.vifId;
    this.issues = opts.issues ?? [];
  }
}

/**
 * A vif dict (or interface options) that does not describe a valid macvtap attachment: bad MAC, unknown mode, VLAN
 * outside 1–4094, a device name libvirt or the kernel would refuse, an option combination libvirt refuses, …
 * `issues` lists every problem found.
 */
export class InvalidVifError extends VifError {
  /** @internal */
  constructor(message: string, opts: { vifId?: string; issues?: VifIssue[] } = {}) {
    super('ERR_VIF_INVALID', message, opts);
  }
}

/**
 * The vif's `details` lack parameters a macvtap attachment needs — Nova's `VifDetailsMissingMacvtapParameters`.
 * `missingParams` holds the canonical key names (`macvtap_source`, `macvtap_mode`, `physical_interface`).
 */
export class VifDetailsMissingMacvtapParameters extends VifError {
  /** The missing keys, canonical names, in the order Nova checks them. */
  readonly missingParams: string[];

  /** @internal */
  constructor(vifId: string | undefined, missingParams: string[]) {
    super(
      'ERR_VIF_DETAILS_MISSING_MACVTAP_PARAMETERS',
      `Parameters ${missingParams.join(', ')} not present in vif details for vif ${vifId ?? '(no id)'}. ` +
        'Check that Neutron sends the macvtap parameters (macvtap_source, macvtap_mode, physical_interface).',
      { vifId, issues: missingParams.map((p) => ({ path: `details.${p}`, message: 'required' })) },
    );
    this.missingParams = missingParams;
  }
}

/** An interface XML document that is not well-formed, or not an `<interface>` this layer understands. */
export class VifXmlError extends VifError {
  /** @internal */
  constructor(message: string, opts: { issues?: VifIssue[]; cause?: unknown } = {}) {
    super('ERR_VIF_XML', message, opts);
  }
}

/**
 * Codes of {@link VifPlugError}:
 * - `ERR_VIF_VLAN_UNSUPPORTED`: the kernel has no 802.1Q VLAN support (`RTM_NEWLINK` answered `EOPNOTSUPP`).
 * - `ERR_VIF_VLAN_CONFLICT`: a link named like the VLAN device exists but is not that VLAN on that lower device.
 * - `ERR_VIF_DEVICE_MISSING`: the source or physical device does not exist.
 * - `ERR_VIF_PLUG_FAILED`: any other kernel refusal (see `cause`).
 */
export type VifPlugErrorCode =
  | 'ERR_VIF_VLAN_UNSUPPORTED'
  | 'ERR_VIF_VLAN_CONFLICT'
  | 'ERR_VIF_DEVICE_MISSING'
  | 'ERR_VIF_PLUG_FAILED';

/** Plugging or unplugging failed on the host; `cause` is the core's `MacvtapError` when the kernel refused. */
export class VifPlugError extends VifError {
  /** The device the failing step was about. */
  readonly device: string | undefined;
  declare readonly code: VifPlugErrorCode;

  /** @internal */
  constructor(code: VifPlugErrorCode, message: string, opts: { vifId?: string; device?: string; cause?: unknown } = {}) {
    super(code, message, opts);
    this.device = opts.device;
  }
}

/**
 * The flavor and the image disagree on a setting — Nova's `FlavorImageConflict`, raised for
 * `hw:vif_multiqueue_enabled` (flavor extra spec) against `hw_vif_multiqueue_enabled` (image property).
 * `setting`, `flavorVal` and `imageVal` are the fields of Nova's message format.
 */
export class FlavorImageConflict extends VifError {
  /** The setting, as Nova names it (`'hw:vif_multiqueue_enabled'`). */
  readonly setting: string;
  /** The flavor's value, read as Nova reads it. */
  readonly flavorVal: unknown;
  /** The image's value, read as Nova reads it. */
  readonly imageVal: unknown;

  /** @internal */
  constructor(setting: string, flavorVal: unknown, imageVal: unknown, vifId?: string) {
    super(
      'ERR_VIF_FLAVOR_IMAGE_CONFLICT',
      `Conflicting values for ${setting} found in the flavor (${String(flavorVal)}) and the image (${String(imageVal)}).`,
      { ...(vifId === undefined ? {} : { vifId }), issues: [{ path: `flavorExtraSpecs.${setting}`, message: `conflicts with the image's value ${String(imageVal)}` }] },
    );
    this.setting = setting;
    this.flavorVal = flavorVal;
    this.imageVal = imageVal;
  }
}

/** The NIC model is not one the virt type supports — Nova's `UnsupportedHardware` (fields `model`, `virt`). */
export class UnsupportedHardware extends VifError {
  /** The requested model (the image's `hw_vif_model`, or Nova's default). */
  readonly model: string;
  /** The virt type (`[libvirt] virt_type`). */
  readonly virt: string;

  /** @internal */
  constructor(model: string, virt: string, vifId?: string) {
    super('ERR_VIF_UNSUPPORTED_HARDWARE', `Requested hardware '${model}' is not supported by the '${virt}' virt driver`, {
      ...(vifId === undefined ? {} : { vifId }),
      issues: [{ path: 'imageProperties.hw_vif_model', message: `not supported by virt type ${virt}` }],
    });
    this.model = model;
    this.virt = virt;
  }
}

/** The virt type is not one Nova's libvirt driver knows — Nova's `UnsupportedVirtType` (field `virt`). */
export class UnsupportedVirtType extends VifError {
  /** The virt type asked for. */
  readonly virt: string;

  /** @internal */
  constructor(virt: string, vifId?: string) {
    super('ERR_VIF_UNSUPPORTED_VIRT_TYPE', `Virtualization type '${virt}' is not supported by this compute driver`, {
      ...(vifId === undefined ? {} : { vifId }),
      issues: [{ path: 'virtType', message: 'must be one of kvm, qemu, lxc, parallels' }],
    });
    this.virt = virt;
  }
}
