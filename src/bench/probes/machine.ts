/**
 * Probe: what kind of moment the machine is having (src/bench/lib/machine.ts), printed as one
 * line; `redleaf bench <suite> --machine` measures the same before and after a suite.
 *
 *   node dist/src/bench/probes/machine.js
 */
import { measureMachine } from '../lib/machine.js';
import { describeMachine } from '../harness.js';

const ROUNDS = 5;
console.log(`${describeMachine(await measureMachine(ROUNDS))} (medians of ${ROUNDS})`);
