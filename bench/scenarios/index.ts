/** Every scenario, in the order a run takes them: the --cpu-prof window repeats scenario 1's, so it comes right after it. */
import type { Scenario } from '../scenario.js';
import { maxRequests } from './1-max-requests.js';
import { fixedRateLatency } from './2-fixed-rate-latency.js';
import { authenticationCost } from './3-authentication-cost.js';
import { idleWatches } from './4-idle-watches.js';
import { upgradesAndTunnel } from './5-upgrades-and-tunnel.js';
import { connectionChurn } from './6-connection-churn.js';
import { everyCredential } from './7-every-credential.js';
import { soak } from './8-soak.js';
import { cpuProfile } from './cpu-profile.js';

export const SCENARIOS: readonly Scenario[] = [maxRequests, cpuProfile, fixedRateLatency, authenticationCost, idleWatches, upgradesAndTunnel, connectionChurn, everyCredential, soak];
