// Every XML the box parses (DMP answers and requests, CDA reports, VIHF assertions, signed allow-lists)
// comes from outside: a DTD could declare entities (billion laughs, external files), so none is accepted.
// Checked on the text, before any parser sees it.
const DTD = /<!(DOCTYPE|ENTITY)/i;

/** The reason to refuse `xml`, or undefined when it declares no document type nor entity. */
export function dtdRefusal(xml: string): string | undefined {
  return DTD.test(xml) ? 'document type declarations (DOCTYPE) and entities are not allowed' : undefined;
}
