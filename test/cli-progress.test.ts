/**
 * The plain-line mode of the progress display (cli/progress.ts) used by demo/eval/bench when
 * stdout is not a terminal: which lines it prints, and when.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { progress } from '../cli/progress.js';

describe('cli progress (plain lines)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  function capture(): string[] {
    vi.stubEnv('CI', 'true'); // plain mode even if the test runner's stdout is a TTY
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void lines.push(s));
    return lines;
  }

  it('prints when a new tenth of the way is reached and 15 s have passed since the last line, with an ETA', () => {
    const lines = capture();
    let t = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => t);
    const p = progress('epoch 1/2', 100);
    for (let i = 1; i <= 100; i++) {
      t = i * 1000; // 1 s per step
      p.tick({ loss: '0.5' });
    }
    p.done('loss 0.5');
    // A line needs a new tenth since the last line AND 15 s since it: steps 15, 30, ..., 90.
    expect(lines).toEqual([
      '  epoch 1/2  15/100  15s elapsed, ETA 1m25s  loss 0.5',
      '  epoch 1/2  30/100  30s elapsed, ETA 1m10s  loss 0.5',
      '  epoch 1/2  45/100  45s elapsed, ETA 55s  loss 0.5',
      '  epoch 1/2  60/100  1m00s elapsed, ETA 40s  loss 0.5',
      '  epoch 1/2  75/100  1m15s elapsed, ETA 25s  loss 0.5',
      '  epoch 1/2  90/100  1m30s elapsed, ETA 10s  loss 0.5',
      '  epoch 1/2  loss 0.5',
    ]);
  });

  it("'each' prints every tick that names a status; done(null) is silent, done() counts", () => {
    const lines = capture();
    const p = progress('bench rows', 3, { plain: 'each', indent: '' });
    p.tick({ row: 'a' }, 0);
    p.tick();
    p.tick({ row: 'b' }, 0);
    p.tick();
    expect(lines).toEqual(['bench rows  0/3  0s elapsed  row a', expect.stringMatching(/^bench rows {2}1\/3 {2}\d+s elapsed, ETA \d+s {2}row b$/)]);
    p.done();
    expect(lines[2]).toMatch(/^bench rows {2}2\/3 done in \d+s$/);
    const q = progress('quiet', 1);
    q.tick();
    q.done(null);
    expect(lines).toHaveLength(3);
  });
});
