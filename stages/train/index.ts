/**
 * The train family's face: the runner stage, the samplers (batches), the model with its
 * hand-written BPTT, the optimizers, the training state (checkpoint) and the backend choice.
 */
export { train, trainStage, trainStepper, evaluate, truncationWeights } from './train.ts';
export * from './batches.ts';
export * from './model.ts';
export * from './optim.ts';
export * from './state.ts';
export * from './backend.ts';
