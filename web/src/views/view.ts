// What every page (route) implements, and what the shell offers it.

export interface View {
  el: HTMLElement;
  /** refresh re-queries after a time range change or auto-refresh tick. */
  refresh(): void;
  destroy(): void;
}

export interface AppContext {
  /** openTrace shows a trace in the split view beside the current page. */
  openTrace(traceId: string, spanId?: string): void;
}
