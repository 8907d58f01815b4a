// Text into the box's small server-rendered HTML pages (launcher, report link, contextual-call pages).
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
