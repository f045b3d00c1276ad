/** The report's face: a self-contained HTML page (inline CSS and SVG) built from the run's database. */
export * from './report.ts';
