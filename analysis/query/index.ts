/** The query tool's face: its subcommands and their flag parser (scripts/query.ts is the CLI). */
export * from './commands.ts';
export { parseQueryArgs, helpText } from './_cli.ts';
export { heldOutKnPerplexity, heldOutPerplexity } from './_perplexity.ts';
