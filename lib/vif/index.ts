/**
 * The Nova `macvtap` vif layer: a typed vif dict, plug/unplug on the host, and the libvirt `<interface>` XML.
 *
 * ```ts
 * const vif = parseVif(JSON.parse(neutronVifJson));
 * await plug(vif);                                   // VLAN device ensured, source device up
 * const xml = toInterfaceXml(vif, { vcpus: 4, quota: flavor.extra_specs });
 * ```
 * Imports the core only through `../index.js`, `../types.js` and the validation predicates of `../validate.js`, and
 * the core's port-security policy check (`../portsec/policy.js`), so a port the core would refuse is refused before
 * a plug creates anything.
 */
export {
  VifError,
  InvalidVifError,
  VifDetailsMissingMacvtapParameters,
  VifXmlError,
  VifPlugError,
  FlavorImageConflict,
  UnsupportedHardware,
  UnsupportedVirtType,
} from './errors.js';
export type { VifIssue, VifPlugErrorCode } from './errors.js';
export {
  VIF_MACVTAP_MODES,
  REQUIRED_MACVTAP_DETAILS,
  DETAIL_ALIASES,
  parseVif,
  kernelMacvtapMode,
} from './model.js';
export type { Vif, VifInput, VifDetails, VifDetailsInput, VifNetwork, VifMacvtapMode, QbhParams, QbgParams } from './model.js';
export {
  MAX_TAP_QUEUES,
  INTERFACE_MODELS,
  BANDWIDTH_QUOTA_KEYS,
  checkInterfaceConfig,
  bandwidthFromQuota,
  interfaceFromVif,
} from './interface.js';
export type {
  InterfaceConfig,
  InterfaceOptions,
  InterfaceModel,
  Bandwidth,
  BandwidthRate,
  Driver,
  HostOffloads,
  GuestOffloads,
  Virtualport,
} from './interface.js';
export { interfaceToXml, toInterfaceXml, parseInterfaceXml, parseDomainInterfaces, toDomainXml } from './xml.js';
export type { DomainOptions } from './xml.js';
export { NOVA_VIRT_TYPES, NOVA_VIF_MODELS, NOVA_SUPPORTED_VIF_MODELS, novaInterfaceConfig, novaInterfaceXml } from './nova.js';
export type { NovaInterfaceOptions, NovaLibvirtConf, NovaVirtType } from './nova.js';
export { plug, unplug, removeVlan, plugSelfManaged, unplugSelfManaged } from './plug.js';
export type { PlugOptions, DirectPlugOptions, PlugResult, SelfManagedOptions, SelfManagedPlug } from './plug.js';
export {
  VIF_PORT_SECURITY_KEYS,
  LIBVIRT_GENERATED_PREFIXES,
  vifPortSecurityPolicy,
  directTargetDev,
  applyVifPortSecurity,
  removeVifPortSecurity,
} from './portsec.js';
export type {
  VifPortSecurity,
  NeutronFixedIp,
  NeutronAllowedAddressPair,
  VifPortSecurityOptions,
  VifPortSecurityResult,
} from './portsec.js';
