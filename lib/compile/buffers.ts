/**
 * The static buffer plan: every value of a program gets a slot, and
 * temporaries whose lifetimes do not overlap share slots (liveness-based
 * reuse), so a program allocates all its memory once and nothing is
 * allocated per op or per run.
 *
 * @module
 */

import type { Plan } from "./plan.ts";

/** Where each value lives. */
export interface BufferPlan {
  /** slot of each value (by value id) */
  readonly slotOf: readonly number[];
  /** size of each slot in bytes (multiples of 16) */
  readonly slotBytes: readonly number[];
  /** bytes a plan without reuse would need, for explain */
  readonly unsharedBytes: number;
}

/**
 * Assigns slots to values.
 *
 * Inputs, params and outputs own their slots (they outlive a run);
 * temporaries live from the kernel that writes them to the last kernel that
 * reads them, and a freed slot is reused by the next temporary that fits
 * (best fit, growing the largest free slot when none fits).
 *
 * @param plan a kernel plan
 * @param bytesPerElement storage bytes of each value's element (by value id)
 * @param reuse share slots between temporaries (off in debug mode, so every
 *   intermediate stays readable after a run)
 * @returns the slot assignment
 */
export function planBuffers(
  plan: Plan,
  bytesPerElement: (valueId: number) => number,
  reuse = true,
): BufferPlan {
  const n = plan.values.length;
  const bytes = plan.values.map((v) =>
    Math.max(16, Math.ceil((v.numel * bytesPerElement(v.id)) / 16) * 16)
  );
  const slotOf = new Array<number>(n).fill(-1);
  const slotBytes: number[] = [];
  const lastUse = new Array<number>(n).fill(-1);
  plan.kernels.forEach((k, t) => {
    for (const i of k.inputs) lastUse[i] = t;
    for (const o of k.outputs) lastUse[o] = Math.max(lastUse[o]!, t);
  });
  const own = (id: number) => {
    slotOf[id] = slotBytes.length;
    slotBytes.push(bytes[id]!);
  };
  for (const v of plan.values) if (v.role !== "temp") own(v.id);
  const free: number[] = [];
  plan.kernels.forEach((k, t) => {
    for (const o of k.outputs) {
      if (slotOf[o] !== -1) continue;
      if (!reuse || free.length === 0) {
        own(o);
        continue;
      }
      const need = bytes[o]!;
      let best = -1;
      for (const s of free) {
        if (slotBytes[s]! >= need && (best < 0 || slotBytes[s]! < slotBytes[best]!)) best = s;
      }
      if (best < 0) {
        for (const s of free) if (best < 0 || slotBytes[s]! > slotBytes[best]!) best = s;
        slotBytes[best] = need;
      }
      free.splice(free.indexOf(best), 1);
      slotOf[o] = best;
    }
    if (!reuse) return;
    for (const v of new Set([...k.inputs, ...k.outputs])) {
      if (plan.values[v]!.role === "temp" && lastUse[v] === t) free.push(slotOf[v]!);
    }
  });
  return {
    slotOf,
    slotBytes,
    unsharedBytes: bytes.reduce((a, b) => a + b, 0),
  };
}
