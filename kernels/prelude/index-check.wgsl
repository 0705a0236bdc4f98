// Device-side index errors. A kernel that reads an index finds it out of range (it then reads 0
// or drops the element, never going out of bounds) and records the first such event of the
// submission in `err_flag`: word 0 = the check id the backend gave this dispatch (0 = no error),
// word 1 = the bad index (i32 bits), word 2 = its position. The backend copies the flag together
// with the next readback and raises an IndexError naming the op (WebGPUBackend.indexCheck).
@group(0) @binding(15) var<storage, read_write> err_flag: array<atomic<u32>, 4>;

fn flag_bad_index(check: u32, value: i32, position: u32) {
  if (atomicLoad(&err_flag[0]) != 0u) { return; }
  loop {
    let r = atomicCompareExchangeWeak(&err_flag[0], 0u, check);
    if (r.exchanged) {
      atomicStore(&err_flag[1], bitcast<u32>(value));
      atomicStore(&err_flag[2], position);
      return;
    }
    if (r.old_value != 0u) { return; }
  }
}
