#!/usr/bin/python3
"""Nova's and Neutron's own code as the oracle for the vif layer (test/vif-nova.test.ts).

Run with Debian's /usr/bin/python3 (python3-nova 26 Zed, python3-neutron 21). Reads one JSON document on stdin and
writes one on stdout, so a whole corpus costs one interpreter start:

  {"config": [{"vif", "vcpus", "extra_specs", "image_properties", "conf", "virt_type"}, ...],
   "plug":   [{"vif", "existing": [device names that exist]}, ...],
   "bind":   [{"mappings", "segment", "address", "vnic_type"}, ...],
   "caps":   [kernel release strings, ...]}
->
  {"versions": {...}, "kernel": os.uname().release,
   "config": [{"xml"} | {"error", "kwargs"}, ...],
   "plug":   [{"commands": [{"argv", "check_exit_code"}]} | {"error"}, ...],
   "bind":   [{"bound", "vif_type", "vif_details", "xml", "commands"} | {"bound": false}, ...],
   "caps":   [_get_max_tap_queues() for that release, ...]}

What runs is Nova's real code: LibvirtGenericVIFDriver.get_config() with real nova.objects (Instance, Flavor,
ImageMeta) and network.model.VIF, and LibvirtGenericVIFDriver.plug() down to nova.privsep.linux_net. Stubbed, because
they need a host or a hypervisor: the privsep daemon (entrypoints run in-process: client_mode off), the commands
themselves (processutils.execute records argv and check_exit_code instead of running `ip`), device_exists (answers
from the case's "existing" list instead of /sys/class/net), the external lock's directory (a temporary one), and, for
"caps" only, os.uname() as vif.py sees it (to ask Nova's queue cap for other kernels than this one).
Neutron's MacvtapMechanismDriver.bind_port() runs with a small fake PortContext (current port, network, segments,
the agent list, set_binding); a new driver per case, because the driver mutates its own vif_details dict.
"""
import json
import logging
import os
import shutil
import sys
import tempfile

logging.disable(logging.CRITICAL)


def main():
    request = json.load(sys.stdin)

    import nova.conf
    from nova import objects
    from nova.network import model as network_model
    import nova.privsep
    import nova.privsep.linux_net as linux_net
    from nova.virt.libvirt import vif as libvirt_vif
    import nova.version

    from lxml import etree

    objects.register_all()
    CONF = nova.conf.CONF
    CONF([], project='nova', default_config_files=[])
    lock_dir = tempfile.mkdtemp(prefix='mvt-nova-locks-')
    try:
        CONF.set_override('lock_path', lock_dir, group='oslo_concurrency')
        run(request, CONF, objects, network_model, nova, linux_net, libvirt_vif, etree)
    finally:
        shutil.rmtree(lock_dir, ignore_errors=True)


def run(request, CONF, objects, network_model, nova, linux_net, libvirt_vif, etree):
    """Every batch in the request, answered on stdout."""
    driver = libvirt_vif.LibvirtGenericVIFDriver(host=None)
    instance = objects.Instance(uuid='00000000-0000-4000-8000-000000000001', display_name='mvt-oracle', id=1)

    def exception_result(e):
        kwargs = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else
                      [str(x) for x in v] if isinstance(v, (list, tuple)) else str(v))
                  for k, v in getattr(e, 'kwargs', {}).items() if k != 'code'}
        return {'error': type(e).__name__, 'kwargs': kwargs, 'message': str(e)}

    config_out = []
    for case in request.get('config', []):
        for opt in ('max_queues', 'rx_queue_size', 'tx_queue_size', 'use_virtio_for_bridges'):
            CONF.clear_override(opt, group='libvirt')
        for opt, value in (case.get('conf') or {}).items():
            CONF.set_override(opt, value, group='libvirt')
        # Nova passes CONF.libvirt.virt_type as virt_type, and get_vif_model reads the option: keep them one.
        CONF.set_override('virt_type', case['virt_type'], group='libvirt')
        try:
            vif = network_model.VIF.hydrate(case['vif'])
            flavor = objects.Flavor(name='mvt-flavor', vcpus=case['vcpus'], memory_mb=64, root_gb=1,
                                    extra_specs=case.get('extra_specs') or {})
            image_meta = objects.ImageMeta.from_dict({'name': 'mvt-image', 'properties': case.get('image_properties') or {}})
            conf = driver.get_config(instance, vif, image_meta, flavor, case['virt_type'])
            config_out.append({'xml': etree.tostring(conf.format_dom(), encoding='unicode')})
        except Exception as e:  # noqa: BLE001 - the class name is the answer
            config_out.append(exception_result(e))

    # _get_max_tap_queues() by kernel release, max_queues unset: os.uname as seen by vif.py answers the release.
    caps_out = []
    real_uname = libvirt_vif.os.uname
    for rel in request.get('caps', []):
        for opt in ('max_queues',):
            CONF.clear_override(opt, group='libvirt')

        class Uname:
            release = rel
        libvirt_vif.os.uname = lambda: Uname
        try:
            caps_out.append(driver._get_max_tap_queues())
        finally:
            libvirt_vif.os.uname = real_uname

    # plug(): privsep entrypoints in-process, commands recorded instead of run.
    nova.privsep.sys_admin_pctxt.client_mode = False
    recorded = []

    def record(*argv, **kwargs):
        recorded.append({'argv': [str(a) for a in argv], 'check_exit_code': kwargs.get('check_exit_code', [0])})
        return ('', '')

    linux_net.processutils.execute = record
    existing = set()
    linux_net.device_exists = lambda device: device in existing
    plug_out = []
    for case in request.get('plug', []):
        recorded.clear()
        existing.clear()
        existing.update(case.get('existing', []))
        try:
            driver.plug(instance, network_model.VIF.hydrate(case['vif']))
            plug_out.append({'commands': list(recorded)})
        except Exception as e:  # noqa: BLE001
            plug_out.append(exception_result(e))

    # Neutron's bind_port() with a fake port context (imported only when asked: it is a second large import).
    bind_cases = request.get('bind', [])
    if bind_cases:
        from neutron.plugins.ml2.drivers.macvtap.mech_driver import mech_macvtap
        from neutron_lib import constants as n_const
        import neutron.version

    class Network:
        current = {'id': 'net-1'}

    class Context:
        def __init__(self, case):
            self.current = {'id': 'port-1', 'binding:vnic_type': case.get('vnic_type', 'normal'), 'fixed_ips': []}
            self.original = None
            self.network = Network()
            self.host = 'compute-1'
            self.segments_to_bind = [{'network_id': 'net-1', **case['segment']}]
            self._agents = [{'alive': True, 'host': 'compute-1', 'agent_type': n_const.AGENT_TYPE_MACVTAP,
                             'configurations': {'interface_mappings': case['mappings']}}]
            self.bound = None

        def host_agents(self, agent_type):
            return [a for a in self._agents if a['agent_type'] == agent_type]

        def set_binding(self, segment_id, vif_type, vif_details, status=None):
            self.bound = {'segment_id': segment_id, 'vif_type': vif_type, 'vif_details': dict(vif_details)}

    bind_out = []
    for case in bind_cases:
        ctx = Context(case)
        mech_macvtap.MacvtapMechanismDriver().bind_port(ctx)
        if not ctx.bound:
            bind_out.append({'bound': False})
            continue
        out = {'bound': True, **ctx.bound}
        # What Nova then does with that binding: get_config (kvm, 1 vCPU, plain flavor and image) and plug.
        vif = network_model.VIF.hydrate({'id': 'port-1', 'address': case['address'], 'type': ctx.bound['vif_type'],
                                         'vnic_type': case.get('vnic_type', 'normal'),
                                         'network': {'id': 'net-1', 'bridge': None, 'label': 'n', 'meta': {}, 'subnets': []},
                                         'details': ctx.bound['vif_details']})
        for opt in ('max_queues', 'rx_queue_size', 'tx_queue_size', 'use_virtio_for_bridges'):
            CONF.clear_override(opt, group='libvirt')
        CONF.set_override('virt_type', 'kvm', group='libvirt')
        flavor = objects.Flavor(name='mvt-flavor', vcpus=1, memory_mb=64, root_gb=1, extra_specs={})
        image_meta = objects.ImageMeta.from_dict({'name': 'mvt-image', 'properties': {}})
        out['xml'] = etree.tostring(driver.get_config(instance, vif, image_meta, flavor, 'kvm').format_dom(), encoding='unicode')
        recorded.clear()
        existing.clear()
        driver.plug(instance, vif)
        out['commands'] = list(recorded)
        bind_out.append(out)

    json.dump({
        'versions': {'nova': nova.version.version_string(),
                     'neutron': neutron.version.version_info.version_string() if bind_cases else None},
        'kernel': os.uname().release,
        'config': config_out,
        'caps': caps_out,
        'plug': plug_out,
        'bind': bind_out,
    }, sys.stdout)


if __name__ == '__main__':
    main()
