/** The `nfvm` command as it ships, built into `dir` (see bundle.mjs); returns the executable's path. */
export declare function bundleCli(dir: string, opts?: { warm?: boolean; sourcemap?: boolean }): Promise<string>;
export declare const WARM_ARGS: readonly string[];
