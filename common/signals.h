// Graceful shutdown helper for the server binaries.
#pragma once

namespace splitrans {

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards.
// REQUIRES: called in main() before any thread is created.
void BlockTerminationSignals();
// Waits until SIGINT or SIGTERM arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace splitrans
