/** The mock endpoint as the CLI (`mock-server`, `demo`) and the tests use it. */
export { startMockServer } from './server.js';
export type { MockOptions, MockRequestRecord, MockServer } from './server.js';
export { DIRECTIVE_HELP } from './directives.js';
