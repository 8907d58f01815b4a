// DICOM DA and TM values copied into a KOS from the PACS, in the form PS3.5 §6.2 requires today:
// DA YYYYMMDD, TM HHMMSS[.FFFFFF]. Older PACS still hand out ACR-NEMA forms ("2024.01.15",
// "11:20:00"), which a validator (dciodvfy) flags; a value that cannot be read becomes empty (the
// study date/time are type 2: empty is allowed, wrong is not).

/** YYYYMMDD from YYYYMMDD, YYYY.MM.DD or YYYY-MM-DD; '' when it is no calendar date. */
export function normaliseDa(value: string | undefined): string {
  const m = /^(\d{4})[.-]?(\d{2})[.-]?(\d{2})$/.exec((value ?? '').trim());
  if (!m) return '';
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d ? `${m[1]}${m[2]}${m[3]}` : '';
}

/**
 * HHMMSS[.FFFFFF] from HH[MM[SS[.F…]]] with or without colons (ACR-NEMA "HH:MM:SS"); missing
 * minutes or seconds are 00; '' when it is no time of day.
 */
export function normaliseTm(value: string | undefined): string {
  const m = /^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec((value ?? '').trim());
  if (!m) return '';
  const [hh, mm = '00', ss = '00', frac] = m.slice(1);
  // 60 s: a leap second, which TM allows
  if (Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 60) return '';
  return `${hh}${mm}${ss}${frac ? `.${frac}` : ''}`;
}
