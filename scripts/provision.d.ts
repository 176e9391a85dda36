/** Types for scripts/provision.js, which stays plain JavaScript because it runs before tsc. */

export type Tool = 'temporal' | 'ferretdb' | 'anvil' | 'mongod' | 'chromium';

/** Pinned versions of the Go-built tools (without the leading "v"). */
export declare const VERSIONS: Readonly<{ temporal: string; ferretdb: string }>;

/** Path of the binary the local stack should run for `tool`, or null when it is not available. */
export declare function resolveBinary(tool: Tool): string | null;

/** Cache location of a Go-built tool of the pinned version, whether or not it exists yet. */
export declare function cachedBinaryPath(tool: 'temporal' | 'ferretdb'): string;

export interface ProvisionedBinary {
  path: string;
  how: 'PATH' | 'cache' | 'built' | 'node_modules' | 'apt-get' | 'LOCKSTEP_CHROMIUM';
}

/** How to get Chromium for the browser test when it is missing. */
export declare const CHROMIUM_HOW_TO: string;

/** Builds or locates every tool; rejects with a message saying what to install. */
export declare function provisionAll(): Promise<Record<Tool, ProvisionedBinary | null>>;
