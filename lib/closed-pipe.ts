/**
 * A reader that stops reading (`| head`) closes the pipe; the next write fails with EPIPE. Like
 * every Unix filter, end quietly then: the reader has what it wanted, and a stack trace or an error
 * line would only be noise. Other write errors (a full disk) still surface.
 */
export function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
}
