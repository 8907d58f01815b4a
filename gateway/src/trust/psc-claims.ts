// Reading a clinician out of Pro Santé Connect claims (userinfo, or an introspection answer).
// PSC's `SubjectNameID` is the national identifier: "8" + the 11-digit RPPS for RPPS holders;
// `sub` is "f:<realm uuid>:<SubjectNameID>". Pure module.

export interface Clinician {
  rpps: string; // 11 digits
  nationalId: string; // "8" + rpps, as PSC presents it (SubjectNameID)
  sub: string;
  givenName?: string;
  familyName?: string;
  name: string; // display name
  profession?: { code: string; specialtyCode?: string };
}

/** The RPPS in a PSC national identifier ("8" + 11 digits), or undefined when it is not an RPPS id. */
export function rppsFromNationalId(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const m = /^8(\d{11})$/.exec(id);
  return m ? m[1] : undefined;
}

/** National id from SubjectNameID, preferred_username, or the last segment of sub. */
export function nationalIdFromClaims(claims: Record<string, unknown>): string | undefined {
  for (const v of [claims.SubjectNameID, claims.preferred_username]) {
    if (typeof v === 'string' && v) return v;
  }
  if (typeof claims.sub === 'string') return claims.sub.split(':').pop();
  return undefined;
}

export function rppsFromClaims(claims: Record<string, unknown>): string | undefined {
  return rppsFromNationalId(nationalIdFromClaims(claims));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

/** Clinician from PSC userinfo claims; undefined when they carry no RPPS identifier. */
export function clinicianFromPscClaims(claims: Record<string, unknown>): Clinician | undefined {
  const nationalId = nationalIdFromClaims(claims);
  const rpps = rppsFromNationalId(nationalId);
  if (!rpps || !nationalId) return undefined;
  const givenName = str(claims.given_name);
  const familyName = str(claims.family_name);
  const refPro = claims.SubjectRefPro as { exercices?: Array<Record<string, unknown>> } | undefined;
  const ex = Array.isArray(refPro?.exercices) ? refPro.exercices[0] : undefined;
  const code = str(ex?.codeProfession);
  const specialtyCode = str(ex?.codeSavoirFaire);
  return {
    rpps,
    nationalId,
    sub: str(claims.sub) ?? nationalId,
    ...(givenName ? { givenName } : {}),
    ...(familyName ? { familyName } : {}),
    name: [givenName, familyName].filter(Boolean).join(' ') || `RPPS ${rpps}`,
    ...(code ? { profession: { code, ...(specialtyCode ? { specialtyCode } : {}) } } : {}),
  };
}
