// An MG image's laterality, view and orientation read from its DICOM JSON (for the hanging and the labels).
import { classifyMg, type MgImageInfo } from './hanging.js';
import { str, strs, seq, type DicomJson } from './dicom-json.js';

export function mgInfo(meta: DicomJson): MgImageInfo {
  const viewCode = seq(meta, '00540220')[0];
  return classifyMg({
    imageLaterality: str(meta, '00200062'), laterality: str(meta, '00200060'), viewPosition: str(meta, '00185101'),
    viewCode: viewCode ? str(viewCode, '00080100') : undefined, patientOrientation: strs(meta, '00200020'),
  });
}
