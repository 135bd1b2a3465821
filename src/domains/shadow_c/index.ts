/**
 * shadow_c: a pass-through shadow of dom_c built from the generated skeleton. It exists to
 * measure what a shadow adds to a call (the `shadow-noarg` and `shadow-async` benchmark cases)
 * and to test the restart-and-retry loop: when dom_c dies, calls that can be reissued are, on a
 * fresh instance.
 */
import type { Callee } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import { shadowControl, type Supervisor } from '../../runtime/shadow.js';
import { shadow_Callee } from '../../gen/shadows.js';

export function init(sys: Sys, sup: Supervisor<Callee>): Callee {
  return shadow_Callee(shadowControl(sys, sup));
}
