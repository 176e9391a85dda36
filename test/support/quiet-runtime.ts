/** Keeps the Temporal SDK's own logging to warnings, so test output shows what matters. */
import { DefaultLogger, Runtime } from '@temporalio/worker';

let installed = false;

export function quietTemporalRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}
