/**
 * The three recurrent cells of d2l's chapter 9 from scratch, with d2l's parameters (one W_x, W_h
 * and b per gate), each as a forward pass over one BPTT window and its hand-written backward pass:
 *
 *   rnn  gates h:       H_t = tanh(X W_xh + H_{t−1} W_hh + b_h)
 *   gru  gates z, r, h: Z = σ(X W_xz + H W_hz + b_z), R = σ(X W_xr + H W_hr + b_r),
 *                       H̃ = tanh(X W_xh + (R⊙H) W_hh + b_h), H_t = Z⊙H_{t−1} + (1−Z)⊙H̃
 *   lstm gates i, f, o, c: I, F, O = σ(X W_x· + H W_h· + b_·), C̃ = tanh(X W_xc + H W_hc + b_c),
 *                       C_t = F⊙C_{t−1} + I⊙C̃, H_t = O⊙tanh(C_t)
 *
 * Gradients are written out rather than left to tf.grad because tfjs's own matMul gradient uses
 * transposeA/B flags, which fall off XNNPACK on wasm onto a scalar loop (about 10× slower): here
 * every matMul is plain and each transposed weight is made once per window. One matrix per gate
 * (rather than one [H, G·H] matrix) means no gate is ever sliced out of a tensor: wasm's slice
 * copies its whole input first. For the same reason every tensor here is per time step.
 * The state of a layer is [h] (rnn, gru) or [h, c] (lstm), each [batch, hidden].
 */
import * as tf from '@tensorflow/tfjs-core';

import type { Cell } from '../../pipeline/config.ts';
export type { Cell };
type T2 = tf.Tensor;

/** The gates of each cell, in parameter order; d2l's suffixes (W_xz, W_hz, b_z, ...). */
export const GATES: Record<Cell, readonly string[]> = { rnn: ['h'], gru: ['z', 'r', 'h'], lstm: ['i', 'f', 'o', 'c'] };
export const STATE_TENSORS: Record<Cell, number> = { rnn: 1, gru: 1, lstm: 2 };

/** What a layer's forward pass keeps for its backward pass. */
export interface LayerTape {
  cell: Cell;
  /** h_{t−1} for t = 0..T−1: the left factor of dW_h. */
  hPrev: T2[];
  /** h_t for t = 0..T−1: the layer's outputs. */
  outputs: T2[];
  /** Cell-specific activations per time step (see forwardLayer). */
  saved: T2[][];
}

/**
 * Runs one layer over a window. `project(t)` gives X_t W_xg + b_g [batch, H] for each gate g of
 * step t; `wh` holds W_hg [H, H] per gate. Call inside tf.tidy; the tape lives until it ends.
 */
export function forwardLayer(cell: Cell, project: (t: number) => T2[], state: T2[], wh: T2[], steps: number): { state: T2[]; tape: LayerTape } {
  const tape: LayerTape = { cell, hPrev: [], outputs: [], saved: [] };
  const ones = _ones();
  const gate = (x: T2, h: T2, w: T2) => tf.add(x, tf.matMul(h, w));
  let [h, c] = state;
  for (let t = 0; t < steps; t++) {
    const x = project(t);
    tape.hPrev.push(h);
    if (cell === 'rnn') {
      h = tf.tanh(gate(x[0], h, wh[0]));
      tape.saved.push([]);
    } else if (cell === 'gru') {
      const z = tf.sigmoid(gate(x[0], h, wh[0]));
      const r = tf.sigmoid(gate(x[1], h, wh[1]));
      const rh = tf.mul(r, h);
      const candidate = tf.tanh(gate(x[2], rh, wh[2]));
      tape.saved.push([z, r, rh, candidate]);
      h = tf.add(tf.mul(z, h), tf.mul(tf.sub(ones(z), z), candidate));
    } else {
      const [i, f, o] = [0, 1, 2].map((g) => tf.sigmoid(gate(x[g], h, wh[g])));
      const candidate = tf.tanh(gate(x[3], h, wh[3]));
      const cPrev = c;
      c = tf.add(tf.mul(f, cPrev), tf.mul(i, candidate));
      const tanhC = tf.tanh(c);
      h = tf.mul(o, tanhC);
      tape.saved.push([i, f, o, candidate, cPrev, tanhC]);
    }
    tape.outputs.push(h);
  }
  return { state: cell === 'lstm' ? [h, c] : [h], tape };
}

/**
 * Backpropagates through one layer's window. `dOutputs[t]` [batch, H] is the gradient arriving at
 * h_t from above. `xi[t]` scales the gradient flowing from step t into step t−1 (0 cuts it: the
 * truncation of `--truncate` and `--truncate-pi`); the gradient into the window's initial state is
 * dropped, which is what detaching the hidden state at a minibatch boundary means. Returns, per
 * gate, the gradient of its pre-activation at each step ([gate][t], [batch, H]) and of W_hg.
 */
export function backwardLayer(tape: LayerTape, dOutputs: T2[], wh: T2[], xi?: Float32Array): { dGates: T2[][]; dWh: T2[] } {
  const { cell, hPrev, saved } = tape;
  const steps = hPrev.length;
  const whT = wh.map((w) => tf.transpose(w)); // once per window, not per step
  const ones = _ones();
  const tanhGrad = (dy: T2, y: T2) => tf.mul(dy, tf.sub(ones(y), tf.square(y))); // tanh' = 1 − y²
  const sigmoidGrad = (dy: T2, y: T2) => tf.mul(dy, tf.sub(y, tf.square(y))); // σ' = y − y²
  const dGates: T2[][] = wh.map(() => new Array(steps));
  let dhNext: T2 | undefined; // gradient into h_t from step t+1
  let dcNext: T2 | undefined; // lstm: gradient into c_t from step t+1
  for (let t = steps - 1; t >= 0; t--) {
    const dh = dhNext ? tf.add(dOutputs[t], dhNext) : dOutputs[t];
    const needPrev = t > 0 && (xi === undefined || xi[t] !== 0);
    let dhPrev: T2 | undefined;
    let dcPrev: T2 | undefined;
    let d: T2[];
    if (cell === 'rnn') {
      d = [tanhGrad(dh, tape.outputs[t])];
    } else if (cell === 'gru') {
      const [z, r, , candidate] = saved[t];
      const h = hPrev[t];
      const dCandidate = tanhGrad(tf.mul(dh, tf.sub(ones(z), z)), candidate);
      const dRH = tf.matMul(dCandidate, whT[2]);
      d = [sigmoidGrad(tf.mul(dh, tf.sub(h, candidate)), z), sigmoidGrad(tf.mul(dRH, h), r), dCandidate];
      // h_{t−1} reaches h_t directly (Z⊙H), through R⊙H, and through both gates.
      if (needPrev) dhPrev = tf.addN([tf.mul(dh, z), tf.mul(dRH, r), tf.matMul(d[0], whT[0]), tf.matMul(d[1], whT[1])]);
    } else {
      const [i, f, o, candidate, cPrev, tanhC] = saved[t];
      const dcFromH = tanhGrad(tf.mul(dh, o), tanhC);
      const dc = dcNext ? tf.add(dcFromH, dcNext) : dcFromH;
      d = [
        sigmoidGrad(tf.mul(dc, candidate), i),
        sigmoidGrad(tf.mul(dc, cPrev), f),
        sigmoidGrad(tf.mul(dh, tanhC), o),
        tanhGrad(tf.mul(dc, i), candidate),
      ];
      if (needPrev) dcPrev = tf.mul(dc, f);
    }
    if (needPrev && cell !== 'gru') dhPrev = d.length === 1 ? tf.matMul(d[0], whT[0]) : tf.addN(d.map((dg, g) => tf.matMul(dg, whT[g])));
    d.forEach((dg, g) => (dGates[g][t] = dg));
    const scale = xi === undefined ? 1 : xi[t];
    dhNext = dhPrev && scale !== 1 ? tf.mul(dhPrev, scale) : dhPrev;
    dcNext = dcPrev && scale !== 1 ? tf.mul(dcPrev, scale) : dcPrev;
  }
  // dW_hg = Σ_t left_tᵀ · dGate_g,t as one matMul over the window: [H, steps·batch] · [steps·batch, H].
  const hPrevT = tf.transpose(tf.concat(hPrev, 0));
  const rhT = cell === 'gru' ? tf.transpose(tf.concat(saved.map((s) => s[2]), 0)) : undefined; // H̃ sees R⊙H
  const dWh = dGates.map((dg, g) => tf.matMul(cell === 'gru' && g === 2 ? rhT! : hPrevT, tf.concat(dg, 0)));
  return { dGates, dWh };
}

/**
 * Tensors of ones by shape, made once per window: wasm's broadcasting path for `1 − x` with a
 * scalar is several times slower than a same-shape subtraction.
 */
function _ones(): (like: T2) => T2 {
  const cache = new Map<string, T2>();
  return (like) => {
    const key = like.shape.join('x');
    let ones = cache.get(key);
    if (!ones) cache.set(key, (ones = tf.onesLike(like)));
    return ones;
  };
}
