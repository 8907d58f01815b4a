// PSC (Pro Santé Connect) simulator for the sandbox and the tests.
export { startPscSimulator, PSC_SCOPES } from './simulator.js';
export type { PscSimulator, PscSimulatorOptions, PscClient, IssueAccessTokenOptions } from './simulator.js';
export { DEFAULT_CLINICIANS, PSC_SUB_PREFIX, nationalIdOf, subOf, pscUserinfoClaims, pscTokenClaims } from './clinicians.js';
export type { TestClinician } from './clinicians.js';
