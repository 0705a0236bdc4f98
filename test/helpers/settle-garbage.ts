/**
 * Runs the garbage collector and lets the engine's FinalizationRegistry safety net reclaim
 * tensors that earlier code dropped without disposing, so that a live-tensor count taken next
 * does not drift down when that happens mid-test (it is otherwise timing-dependent). What the
 * code under test leaves behind afterwards is still counted: read the count without collecting.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

export async function settleGarbage(): Promise<void> {
  collect();
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}
