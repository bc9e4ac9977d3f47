import type { Placement } from './placement.ts';
import type { VmPlan } from './plan.ts';
import { instanceName, vmHostname } from './ids.ts';
import { controlMetadata } from './vm-control.ts';
import type { WorkshopRecord, WorkshopSecrets } from './workshop.ts';

export const APP_LABEL = 'clarateach';
export const SSH_USER = 'clarateach';

export interface VmSpecSettings {
  project: string;
  registry: string;
  nekoImage: string;
  caddyImage: string;
  readyTopic: string;
  startupScript: string;
  /** startup/clarateach-watcher.sh, which the startup script runs once the seats are ready. */
  watcherScript: string;
  /** PORTAL_ORIGIN: the one other site whose pages may frame a seat's ('' when none). */
  portalOrigin: string;
  /** SEAT_DOMAIN: the VM is named VM.SEAT_DOMAIN ('' when none: its seats are ports of its IP). */
  seatDomain: string;
}

/** One VM as the provisioner creates it. */
export interface InstanceSpec {
  name: string;
  zone: string;
  machineType: string;
  labels: Record<string, string>;
  metadata: Record<string, string>;
  spot: boolean;
}

/** Everything one VM needs to boot its seats, as instance labels and metadata (DESIGN.md §6). */
export function instanceSpec(
  workshop: WorkshopRecord,
  vm: VmPlan,
  secrets: WorkshopSecrets,
  settings: VmSpecSettings,
  placement: Placement,
): InstanceSpec {
  const name = instanceName(workshop.id, vm.index);
  return {
    name,
    zone: placement.zone,
    machineType: vm.machineType,
    // Labels let the sweep find every VM of this system, including ones no record knows about.
    labels: { app: APP_LABEL, workshop: workshop.id },
    metadata: {
      'startup-script': settings.startupScript,
      'clarateach-watcher': settings.watcherScript,
      'workshop-id': workshop.id,
      'workshop-name': workshop.name,
      instructions: workshop.instructions ?? '',
      'vm-name': name,
      'seat-first': String(vm.firstSeat),
      'seat-count': String(vm.seatCount),
      'workspace-image': workshop.image,
      'neko-image': settings.nekoImage,
      'caddy-image': settings.caddyImage,
      // docker-credential-gcr wants the registry host, not the repository path.
      registry: settings.registry.split('/')[0] ?? '',
      'ready-topic': `projects/${settings.project}/topics/${settings.readyTopic}`,
      'ready-token': secrets.readyTokens[name] ?? '',
      // A replacement VM starts from the seats' current credentials, resets and class end.
      ...controlMetadata(workshop, vm, secrets),
      'viewer-token': secrets.viewerToken ?? '',
      'portal-origin': settings.portalOrigin,
      // The name the seats' origins and certificate carry; empty: the VM's external IP.
      'public-host': settings.seatDomain ? vmHostname(name, settings.seatDomain) : '',
      'ssh-keys': `${SSH_USER}:${secrets.sshPublicKey}`,
    },
    spot: placement.spot,
  };
}
