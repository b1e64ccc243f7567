/**
 * Ends the run with one plain line, `tests: N passed, N failed, N skipped`,
 * after everything Jest prints, so that CI can read the outcome from the last line.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `tests: ${results.numPassedTests} passed, ${failed} failed, ${results.numPendingTests} skipped\n`;
    // Jest prints its own summary after the reporters; the process's exit comes after that.
    process.once('exit', () => process.stderr.write(`\n${line}`));
  }
}

module.exports = SummaryReporter;
