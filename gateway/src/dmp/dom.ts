// Tiny namespace-agnostic DOM helpers over @xmldom/xmldom: XDS messages come with arbitrary prefixes,
// so we match on local names inside known structures rather than on prefixed XPath.
import { DOMParser, type Element, type Document } from '@xmldom/xmldom';
import { dtdRefusal } from '../xml/dtd.js';

export type { Element, Document };

export class XmlParseError extends Error {
  override name = 'XmlParseError';
}

/** Parse XML; malformed input or a DTD throws XmlParseError instead of returning a half-built tree. */
export function parseXml(xml: string): Document {
  const refused = dtdRefusal(xml);
  if (refused) throw new XmlParseError(`refused XML: ${refused}`);
  const errors: string[] = [];
  const doc = new DOMParser({
    onError: (level, msg) => {
      if (level !== 'warning') errors.push(msg);
    },
  }).parseFromString(xml, 'text/xml');
  if (errors.length || !doc.documentElement) throw new XmlParseError(`malformed XML: ${errors[0] ?? 'no root element'}`);
  return doc;
}

export function elements(parent: Element | Document, localName?: string): Element[] {
  const out: Element[] = [];
  const kids = parent.childNodes;
  for (let i = 0; i < kids.length; i++) {
    const n = kids[i] as unknown as Element;
    if (n.nodeType === 1 && (!localName || n.localName === localName)) out.push(n);
  }
  return out;
}

export function element(parent: Element | Document, localName: string): Element | undefined {
  return elements(parent, localName)[0];
}

/** All descendants with a local name (document order). */
export function descendants(root: Element | Document, localName: string): Element[] {
  const out: Element[] = [];
  const walk = (e: Element | Document): void => {
    for (const c of elements(e)) {
      if (c.localName === localName) out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

export function descendant(root: Element | Document, localName: string): Element | undefined {
  return descendants(root, localName)[0];
}

export function text(e: Element | undefined): string {
  return (e?.textContent ?? '').trim();
}

export function attr(e: Element | undefined, name: string): string | undefined {
  if (!e || !e.hasAttribute(name)) return undefined;
  return e.getAttribute(name) ?? undefined;
}

/** Escape text for use in XML content or attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
