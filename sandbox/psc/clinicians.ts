// Test clinicians of the PSC simulator and the PSC-shaped claims it releases for them.
// Shapes follow what Pro Santé Connect puts in its userinfo: `SubjectNameID` is the national
// identifier ("8" + RPPS for RPPS holders), `sub` is "f:<realm uuid>:<SubjectNameID>", and
// `SubjectRefPro.exercices[]` carries the profession (TRE_G15 codeProfession, TRE_R38 savoir-faire).

export interface TestClinician {
  rpps: string; // 11 digits
  givenName: string;
  familyName: string;
  civility: 'M' | 'MME';
  professionCode: string; // TRE_G15: '10' Médecin, '60' Infirmier, ...
  professionLabel: string;
  specialtyCode: string; // TRE_R38 savoir-faire, '' when none
  specialtyLabel: string;
  organization: string;
}

/** Realm part of PSC's `sub` ("f:<uuid>:<SubjectNameID>"). */
export const PSC_SUB_PREFIX = 'f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:';

export const DEFAULT_CLINICIANS: TestClinician[] = [
  {
    rpps: '10001234567', givenName: 'Marie', familyName: 'Curie-Test', civility: 'MME',
    professionCode: '10', professionLabel: 'Médecin', specialtyCode: 'SM44', specialtyLabel: 'Radio-diagnostic',
    organization: 'CENTRE IMAGERIE SANDBOX',
  },
  {
    rpps: '10009876543', givenName: 'Jean', familyName: 'Laennec-Test', civility: 'M',
    professionCode: '10', professionLabel: 'Médecin', specialtyCode: 'SM26', specialtyLabel: 'Qualifié en médecine générale',
    organization: 'CABINET MEDICAL SANDBOX',
  },
  {
    rpps: '10005555555', givenName: 'Antoine', familyName: 'Beclere-Test', civility: 'M',
    professionCode: '10', professionLabel: 'Médecin', specialtyCode: 'SM44', specialtyLabel: 'Radio-diagnostic',
    organization: 'CHU SANDBOX',
  },
  {
    rpps: '10002222222', givenName: 'Claire', familyName: 'Vaillant-Test', civility: 'MME',
    professionCode: '10', professionLabel: 'Médecin', specialtyCode: 'SM04', specialtyLabel: 'Cardiologie',
    organization: 'CHU SANDBOX',
  },
];

export function nationalIdOf(c: Pick<TestClinician, 'rpps'>): string {
  return `8${c.rpps}`;
}

export function subOf(c: Pick<TestClinician, 'rpps'>): string {
  return PSC_SUB_PREFIX + nationalIdOf(c);
}

/** Userinfo claims as PSC releases them for scope `scope_all`. */
export function pscUserinfoClaims(c: TestClinician): Record<string, unknown> {
  const nationalId = nationalIdOf(c);
  return {
    sub: subOf(c),
    SubjectNameID: nationalId,
    preferred_username: nationalId,
    given_name: c.givenName,
    family_name: c.familyName,
    codeCivilite: c.civility,
    SubjectOrganization: c.organization,
    SubjectRole: [`${c.professionCode}^1.2.250.1.213.1.1.5.5`],
    Palier_Authentification: 'APPPRIP3^1.2.250.1.213.1.5.1.1.1',
    otherIds: [{ identifiant: nationalId, origine: 'RPPS', qualite: 1 }],
    SubjectRefPro: {
      codeCivilite: c.civility,
      exercices: [
        {
          codeProfession: c.professionCode,
          codeCategorieProfessionnelle: 'C',
          codeCiviliteDexercice: 'DR',
          nomDexercice: c.familyName,
          prenomDexercice: c.givenName,
          codeTypeSavoirFaire: c.specialtyCode ? 'S' : '',
          codeSavoirFaire: c.specialtyCode,
          activities: [
            { codeModeExercice: 'L', codeSecteurDactivite: 'SA07', raisonSocialeSite: c.organization },
          ],
        },
      ],
    },
  };
}

/** Claims PSC also exposes on its access tokens (and so in introspection answers). */
export function pscTokenClaims(c: TestClinician): Record<string, unknown> {
  const nationalId = nationalIdOf(c);
  return {
    SubjectNameID: nationalId,
    preferred_username: nationalId,
    given_name: c.givenName,
    family_name: c.familyName,
  };
}
