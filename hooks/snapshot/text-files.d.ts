/**
 * Data files imported as their text (`import x from './f.sysctl' with { type: 'text' }`):
 * `*.sysctl` is sysctl -a format. esbuild loads them with its text loader
 * (the import attribute asks for it, in every bundle), vitest with the text
 * plugin of vitest.config.ts.
 */
declare module '*.sysctl' {
  const text: string;
  export default text;
}
