/** nfvm's library entry point. */
export * from './compiler/index.js';
