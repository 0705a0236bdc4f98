/**
 * Node-only: carries the current `tidy` scope across `await`s of each async task with
 * `AsyncLocalStorage`, so that interleaved tasks awaiting inside their own async `tidy` scopes
 * never collect, keep or dispose each other's tensors. Installed by the Node entry point.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Scope, setAsyncScopeContext } from '../engine/runtime.js';

export function installNodeAsyncScopes(): void {
  const als = new AsyncLocalStorage<Scope>();
  setAsyncScopeContext({
    run: (scope, fn) => als.run(scope, fn),
    get: () => als.getStore(),
  });
}
