/**
 * The three recurrent cells of d2l's chapter 9 from scratch (rnn, gru, lstm), each as a forward
 * pass over one BPTT window and its hand-written backward pass. Gradients are written out rather
 * than left to tf.grad because tfjs's own matMul gradient uses transposeA/B flags, which fall off
 * XNNPACK on wasm onto a scalar loop (about 10× slower): here every matMul is plain and each
 * transposed weight is made once per window, not once per time step.
 *
 * Gate layout (columns of W_x [in, G·H], W_h [H, G·H] and b [G·H]; d2l's names in brackets):
 *   rnn  G=1: [h]             H_t = tanh(X W_xh + H_{t−1} W_hh + b_h)
 *   gru  G=3: [z | r | h̃]     Z, R = σ(X W_x{z,r} + H W_h{z,r} + b); H̃ = tanh(X W_xh + (R⊙H) W_hh + b_h)
 *                               H_t = Z⊙H_{t−1} + (1−Z)⊙H̃
 *   lstm G=4: [i | f | o | c̃] I, F, O = σ(…); C̃ = tanh(…); C_t = F⊙C_{t−1} + I⊙C̃; H_t = O⊙tanh(C_t)
 * The state of a layer is [h] (rnn, gru) or [h, c] (lstm), each [batch, hidden]. All tensors are
 * per time step: wasm's slice copies its whole input, so cutting steps out of one big tensor would
 * make a window quadratic in its length.
 */
import * as tf from '@tensorflow/tfjs-core';

export type Cell = 'rnn' | 'gru' | 'lstm';
type T2 = tf.Tensor;

export const GATES: Record<Cell, number> = { rnn: 1, gru: 3, lstm: 4 };
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
 * Runs one layer over a window. `project(t)` gives X_t W_x + b [batch, G·H] for step t. Call inside
 * tf.tidy; the tape's tensors live until the tidy ends.
 */
export function forwardLayer(cell: Cell, project: (t: number) => T2, state: T2[], wh: T2, steps: number): { state: T2[]; tape: LayerTape } {
  const hidden = wh.shape[0];
  const tape: LayerTape = { cell, hPrev: [], outputs: [], saved: [] };
  // GRU multiplies R⊙H, not H, by the candidate's block: split W_h once per window.
  const whZR = cell === 'gru' ? tf.slice(wh, [0, 0], [hidden, 2 * hidden]) : wh;
  const whH = cell === 'gru' ? tf.slice(wh, [0, 2 * hidden], [hidden, hidden]) : wh;
  const ones = _ones();
  let [h, c] = state;
  for (let t = 0; t < steps; t++) {
    const x = project(t); // [batch, G·H]
    const batch = x.shape[0];
    tape.hPrev.push(h);
    if (cell === 'rnn') {
      h = tf.tanh(tf.add(x, tf.matMul(h, wh)));
      tape.saved.push([]);
    } else if (cell === 'gru') {
      const zr = tf.sigmoid(tf.add(tf.slice(x, [0, 0], [batch, 2 * hidden]), tf.matMul(h, whZR)));
      const [z, r] = tf.split(zr, 2, 1);
      const rh = tf.mul(r, h);
      const candidate = tf.tanh(tf.add(tf.slice(x, [0, 2 * hidden], [batch, hidden]), tf.matMul(rh, whH)));
      tape.saved.push([z, r, rh, candidate]);
      h = tf.add(tf.mul(z, h), tf.mul(tf.sub(ones(z), z), candidate));
    } else {
      const gates = tf.add(x, tf.matMul(h, wh));
      const [i, f, o] = tf.split(tf.sigmoid(tf.slice(gates, [0, 0], [batch, 3 * hidden])), 3, 1);
      const candidate = tf.tanh(tf.slice(gates, [0, 3 * hidden], [batch, hidden]));
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
 * dropped, which is what detaching the hidden state at a minibatch boundary means. Returns the
 * gradient of each step's pre-activations X_t W_x + H W_h + b ([batch, G·H]) and of W_h.
 */
export function backwardLayer(tape: LayerTape, dOutputs: T2[], wh: T2, xi?: Float32Array): { dGates: T2[]; dWh: T2 } {
  const { cell, hPrev, saved } = tape;
  const steps = hPrev.length;
  const hidden = wh.shape[0];
  const whT = cell === 'gru' ? undefined : tf.transpose(wh); // [G·H, H]
  const whZRT = cell === 'gru' ? tf.transpose(tf.slice(wh, [0, 0], [hidden, 2 * hidden])) : undefined;
  const whHT = cell === 'gru' ? tf.transpose(tf.slice(wh, [0, 2 * hidden], [hidden, hidden])) : undefined;
  const ones = _ones();
  const tanhGrad = (dy: T2, y: T2) => tf.mul(dy, tf.sub(ones(y), tf.square(y))); // tanh' = 1 − y²
  const sigmoidGrad = (dy: T2, y: T2) => tf.mul(dy, tf.sub(y, tf.square(y))); // σ' = y − y²
  const dGates: T2[] = new Array(steps);
  const dZRs: T2[] = new Array(steps); // gru: the two blocks of dGates that multiply H …
  const dCandidates: T2[] = new Array(steps); // … and the one that multiplies R⊙H
  let dhNext: T2 | undefined; // gradient into h_t from step t+1
  let dcNext: T2 | undefined; // lstm: gradient into c_t from step t+1
  for (let t = steps - 1; t >= 0; t--) {
    const dh = dhNext ? tf.add(dOutputs[t], dhNext) : dOutputs[t];
    const needPrev = t > 0 && (xi === undefined || xi[t] !== 0);
    let dhPrev: T2 | undefined;
    let dcPrev: T2 | undefined;
    if (cell === 'rnn') {
      dGates[t] = tanhGrad(dh, tape.outputs[t]);
      if (needPrev) dhPrev = tf.matMul(dGates[t], whT!);
    } else if (cell === 'gru') {
      const [z, r, , candidate] = saved[t];
      const h = hPrev[t];
      const dCandidate = tanhGrad(tf.mul(dh, tf.sub(ones(z), z)), candidate);
      const dRH = tf.matMul(dCandidate, whHT!);
      const dZR = tf.concat([sigmoidGrad(tf.mul(dh, tf.sub(h, candidate)), z), sigmoidGrad(tf.mul(dRH, h), r)], 1);
      dGates[t] = tf.concat([dZR, dCandidate], 1);
      dZRs[t] = dZR;
      dCandidates[t] = dCandidate;
      if (needPrev) dhPrev = tf.add(tf.add(tf.mul(dh, z), tf.mul(dRH, r)), tf.matMul(dZR, whZRT!));
    } else {
      const [i, f, o, candidate, cPrev, tanhC] = saved[t];
      const dcFromH = tanhGrad(tf.mul(dh, o), tanhC);
      const dc = dcNext ? tf.add(dcFromH, dcNext) : dcFromH;
      dGates[t] = tf.concat([
        sigmoidGrad(tf.mul(dc, candidate), i),
        sigmoidGrad(tf.mul(dc, cPrev), f),
        sigmoidGrad(tf.mul(dh, tanhC), o),
        tanhGrad(tf.mul(dc, i), candidate),
      ], 1);
      if (needPrev) {
        dhPrev = tf.matMul(dGates[t], whT!);
        dcPrev = tf.mul(dc, f);
      }
    }
    const scale = xi === undefined ? 1 : xi[t];
    dhNext = dhPrev && scale !== 1 ? tf.mul(dhPrev, scale) : dhPrev;
    dcNext = dcPrev && scale !== 1 ? tf.mul(dcPrev, scale) : dcPrev;
  }
  // dW_h = Σ_t h_{t−1}ᵀ · dGates_t as one matMul over the window: [H, steps·batch] · [steps·batch, G·H].
  const hPrevT = tf.transpose(tf.concat(hPrev, 0));
  const dWh = cell === 'gru'
    ? tf.concat([
      tf.matMul(hPrevT, tf.concat(dZRs, 0)),
      tf.matMul(tf.transpose(tf.concat(saved.map((s) => s[2]), 0)), tf.concat(dCandidates, 0)),
    ], 1)
    : tf.matMul(hPrevT, tf.concat(dGates, 0));
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
