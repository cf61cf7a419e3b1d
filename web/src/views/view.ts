// What every page (route) implements, and what the shell offers it.

import type { AnalyzeRequest } from "../lib/analyze";

export interface View {
  el: HTMLElement;
  /** refresh re-queries after a time range change or auto-refresh tick. */
  refresh(): void;
  destroy(): void;
}

export interface AppContext {
  /** openTrace shows a trace in the split view beside the current page. */
  openTrace(traceId: string, spanId?: string): void;
  /** openWhy asks why a query looks as it does in a region and shows the answer in the "Why?" side panel. */
  openWhy(r: AnalyzeRequest): void;
}
