// DOM helpers. Every piece of text goes through text nodes (document.createTextNode
// or textContent); nothing in the UI ever assigns innerHTML. Attribute values are
// set with setAttribute, and event-handler attributes (on*) are refused so that a
// label value can never become script.

export type Child = Node | string | number | null | undefined | false;
export type Children = Child | Child[];

export interface Attrs {
  class?: string;
  style?: Partial<CSSStyleDeclaration> | Record<string, string>;
  on?: Partial<{ [K in keyof HTMLElementEventMap]: (ev: HTMLElementEventMap[K]) => void }>;
  dataset?: Record<string, string>;
  [attr: string]: unknown;
}

function append(el: Node, c: Children): void {
  if (Array.isArray(c)) {
    for (const x of c) append(el, x);
    return;
  }
  if (c === null || c === undefined || c === false) return;
  el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
}

/** h creates an element with attributes and children; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Children[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = String(v);
      else if (k === "style") Object.assign(el.style, v as object);
      else if (k === "on") {
        for (const [ev, fn] of Object.entries(v as Record<string, EventListener>)) el.addEventListener(ev, fn);
      } else if (k === "dataset") Object.assign(el.dataset, v as Record<string, string>);
      else if (k.toLowerCase().startsWith("on")) throw new Error(`h: event attribute ${k} refused; use on:{}`);
      else if (k === "href" && !isSafeHref(String(v))) el.setAttribute("href", "#");
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
  }
  for (const c of children) append(el, c);
  return el;
}

/** isSafeHref accepts same-origin relative links only. */
export function isSafeHref(href: string): boolean {
  return href.startsWith("/") && !href.startsWith("//") || href.startsWith("?") || href.startsWith("#");
}

/** clear removes all children of el. */
export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** replace clears el and appends children. */
export function replace(el: Element, ...children: Children[]): void {
  clear(el);
  for (const c of children) append(el, c);
}

/** text sets an element's text (never markup). */
export function text(el: Element, s: string): void {
  el.textContent = s;
}
