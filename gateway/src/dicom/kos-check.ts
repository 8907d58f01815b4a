// Checks dciodvfy does not make: document title, TID 2010 template, content items, Retrieve URLs,
// and that the evidence and the content reference exactly the same instances, each once.
import { KOS_SOP_CLASS, KosParseError, parseKos, readDataset, REJECTION_TITLE_CODES, type ParsedKos } from './kos.js';
import { isImageSopClass, isValidUid } from './uid.js';

// CID 7010 Key Object Selection Document Titles
const CID_7010 = new Set([
  '113000', '113001', '113002', '113003', '113004', '113005', '113006', '113007', '113008', '113009', '113010',
  '113013', '113018', '113020', '113021', '113030', '113031', '113032', '113033', '113034', '113035', '113036',
  '113037', '113038', '113039', '128022',
]);

export interface CheckKosOptions {
  /** expected title code (default: any CID 7010 title) — DRIM-M manifests use 113030 */
  expectTitle?: string;
  /** DRIM-M manifest rules: RetrieveURL + RetrieveLocationUID on every series, INS patient id (default true unless the title is a rejection note) */
  drimm?: boolean;
  /** accept http:// Retrieve URLs (default: https only) */
  allowHttp?: boolean;
}

export function checkKos(part10: Buffer, opts: CheckKosOptions = {}): string[] {
  const problems: string[] = [];
  let k: ParsedKos;
  try {
    k = parseKos(part10);
  } catch (e) {
    return [e instanceof KosParseError ? e.message : `Unreadable KOS: ${(e as Error).message}`];
  }
  const ds = readDataset(part10);
  const drimm = opts.drimm ?? !k.isRejectionNote;

  if (k.sopClassUid !== KOS_SOP_CLASS) problems.push(`SOPClassUID is ${k.sopClassUid}, not ${KOS_SOP_CLASS}`);
  if (k.modality !== 'KO') problems.push(`Modality is ${k.modality ?? 'missing'}, not KO`);
  if (String(ds.ValueType?.[0] ?? ds.ValueType) !== 'CONTAINER') problems.push('root ValueType is not CONTAINER');
  if (String(ds.ContinuityOfContent?.[0] ?? ds.ContinuityOfContent) !== 'SEPARATE') problems.push('ContinuityOfContent is not SEPARATE');

  // title
  if (k.title.scheme !== 'DCM') problems.push(`document title scheme is "${k.title.scheme}", not DCM`);
  if (!CID_7010.has(k.title.code)) problems.push(`document title code ${k.title.code || '(none)'} is not in CID 7010`);
  if (opts.expectTitle && k.title.code !== opts.expectTitle) problems.push(`document title is ${k.title.code}, expected ${opts.expectTitle}`);
  if (!k.title.meaning) problems.push('document title has no CodeMeaning');

  // template
  if (k.template?.mappingResource !== 'DCMR' || k.template?.templateId !== '2010') {
    problems.push(`ContentTemplateSequence is not DCMR/2010 (found ${k.template?.mappingResource ?? '-'}/${k.template?.templateId ?? '-'})`);
  }

  // UIDs
  for (const [name, uid] of [['SOPInstanceUID', k.sopInstanceUid], ['SeriesInstanceUID', k.seriesInstanceUid], ['StudyInstanceUID', k.studyInstanceUid]] as const) {
    if (!isValidUid(uid)) problems.push(`${name} "${uid}" is not a valid UID`);
  }

  // content items
  const inContent = new Map<string, string>();
  let textItems = 0;
  k.content.forEach((c, i) => {
    const where = `content item ${i + 1}`;
    if (c.relationship !== 'CONTAINS') problems.push(`${where}: relationship ${c.relationship ?? 'missing'}, expected CONTAINS`);
    if (c.valueType === 'TEXT') {
      textItems++;
      if (c.concept !== '113012') problems.push(`${where}: TEXT item concept is ${c.concept ?? 'missing'}, expected 113012 Key Object Description`);
      return;
    }
    if (!['IMAGE', 'COMPOSITE', 'WAVEFORM'].includes(c.valueType)) {
      problems.push(`${where}: value type ${c.valueType} is not allowed by TID 2010`);
      return;
    }
    if (!c.sopInstanceUid || !c.sopClassUid) {
      problems.push(`${where}: no ReferencedSOPSequence`);
      return;
    }
    if (!isValidUid(c.sopInstanceUid)) problems.push(`${where}: bad SOP instance UID ${c.sopInstanceUid}`);
    const image = isImageSopClass(c.sopClassUid);
    if (c.valueType === 'IMAGE' && !image) problems.push(`${where}: IMAGE item references non-image SOP class ${c.sopClassUid}`);
    if (c.valueType === 'COMPOSITE' && image) problems.push(`${where}: image SOP class ${c.sopClassUid} should be an IMAGE item`);
    if (inContent.has(c.sopInstanceUid)) problems.push(`${where}: instance ${c.sopInstanceUid} referenced twice in the content`);
    inContent.set(c.sopInstanceUid, c.sopClassUid);
  });
  if (textItems > 1) problems.push('more than one Key Object Description TEXT item');
  if (inContent.size === 0) problems.push('the content references no instance');

  // evidence
  const inEvidence = new Map<string, string>();
  if (k.studies.length === 0) problems.push('CurrentRequestedProcedureEvidenceSequence is empty');
  for (const st of k.studies) {
    if (!isValidUid(st.studyUid)) problems.push(`evidence study UID "${st.studyUid}" is not valid`);
    for (const se of st.series) {
      if (!isValidUid(se.seriesUid)) problems.push(`evidence series UID "${se.seriesUid}" is not valid`);
      if (drimm) {
        if (!se.retrieveUrl) problems.push(`series ${se.seriesUid}: no RetrieveURL`);
        else {
          const m = /^(https?):\/\/[^/\s]+(\/[^\s]*)?\/studies\/([^/]+)\/series\/([^/?#]+)$/.exec(se.retrieveUrl);
          if (!m) problems.push(`series ${se.seriesUid}: RetrieveURL "${se.retrieveUrl}" is not <base>/studies/<study>/series/<series>`);
          else {
            if (m[1] !== 'https' && !opts.allowHttp) problems.push(`series ${se.seriesUid}: RetrieveURL is not https`);
            if (m[3] !== st.studyUid || m[4] !== se.seriesUid) problems.push(`series ${se.seriesUid}: RetrieveURL names study/series ${m[3]}/${m[4]}, not the evidence's`);
          }
        }
        if (!se.retrieveLocationUid) problems.push(`series ${se.seriesUid}: no RetrieveLocationUID`);
        else if (!isValidUid(se.retrieveLocationUid)) problems.push(`series ${se.seriesUid}: RetrieveLocationUID "${se.retrieveLocationUid}" is not a valid UID`);
      }
      if (se.instances.length === 0) problems.push(`series ${se.seriesUid}: no ReferencedSOPSequence item`);
      for (const i of se.instances) {
        if (inEvidence.has(i.sopInstanceUid)) problems.push(`instance ${i.sopInstanceUid} appears twice in the evidence`);
        inEvidence.set(i.sopInstanceUid, i.sopClassUid);
      }
    }
  }

  // content ⇔ evidence
  for (const [uid, cls] of inContent) {
    const ev = inEvidence.get(uid);
    if (ev === undefined) problems.push(`instance ${uid} is in the content but not in the evidence`);
    else if (ev !== cls) problems.push(`instance ${uid}: SOP class ${cls} in the content, ${ev} in the evidence`);
  }
  for (const uid of inEvidence.keys()) {
    if (!inContent.has(uid)) problems.push(`instance ${uid} is in the evidence but not in the content`);
  }

  // DRIM-M patient and request rules
  if (drimm) {
    if (!k.patient.id) problems.push('PatientID (INS) is empty');
    if (!k.patient.issuerOid) problems.push('IssuerOfPatientIDQualifiersSequence has no UniversalEntityID (INS OID)');
    const requested = new Set(
      (Array.isArray(ds.ReferencedRequestSequence) ? ds.ReferencedRequestSequence : []).map((r: Record<string, unknown>) => String((r.StudyInstanceUID as string[] | undefined)?.[0] ?? '')),
    );
    if (!requested.has(k.studyInstanceUid)) problems.push('ReferencedRequestSequence has no item for the KOS study');
  }
  if (k.isRejectionNote && !REJECTION_TITLE_CODES.has(k.title.code)) problems.push('inconsistent rejection note title');
  return problems;
}
