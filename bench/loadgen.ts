/**
 * The load generator (a child process, outside every measured process).
 * It runs one job at a time for the harness and answers with what it measured;
 * each mode is a module of bench/loadgen/, and loadgen/jobs.ts is what the
 * harness sends and gets back:
 *
 * - `closed` (closed-loop.ts): the maximum rate on N connections or HTTP/2 streams;
 * - `open` (fixed-rate.ts): a fixed arrival rate, latency from the moment of issue;
 * - `watchOpen`/`watchCollect`/`watchClose` (watches.ts): idle watches, event delay;
 * - `watchChurn` (watch-churn.ts): watches opened at a fixed rate, each closed after a while;
 * - `upgrades` (upgrades.ts): SPDY upgrade sessions at a fixed rate;
 * - `tunnel` (tunnel.ts): bytes per second through one upgrade.
 *
 * Around the measured part of `closed` and `open` it sends `mark` events, so
 * the harness reads the proxy's CPU time over exactly that window.
 */
import { emitEvent, serveCalls } from './ipc.js';
import { closed } from './loadgen/closed-loop.js';
import { open } from './loadgen/fixed-rate.js';
import { tunnel } from './loadgen/tunnel.js';
import { upgrades } from './loadgen/upgrades.js';
import { watchChurn } from './loadgen/watch-churn.js';
import { watchClose, watchCollect, watchOpen } from './loadgen/watches.js';

serveCalls({ closed, open, watchOpen, watchCollect, watchClose, watchChurn, upgrades, tunnel, ping: () => 'pong' });
emitEvent('ready');
