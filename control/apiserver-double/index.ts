// A Kubernetes API server double for tests; see server.ts.
export { ApiServer, type ApiServerOptions } from './server.js';
export { ApiError, type Cause } from './errors.js';
export type { Fault, RequestRecord, Verb } from './faults.js';
export type { KubeObject, ObjectMeta } from './types.js';
