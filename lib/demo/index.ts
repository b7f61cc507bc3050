export { runDemo, DEFAULTS } from './run';
export type { DemoOptions, DemoHooks, DemoReport, EpsResult, Metrics } from './run';
export { formatTable, ROWS } from './format';
export { loadDigits, selectDigits, split, flipLabels, take, defaultDataPath } from './data';
export type { Dataset, Split, Noisy } from './data';
export { Mlp, Adam } from './mlp';
export { Rng } from './rng';
export { train, argmax, agreement } from './train';
export type { TrainOptions, EpochInfo } from './train';
