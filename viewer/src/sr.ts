// Measurements as DICOM SR (TID 1500), as OHIF does with Cornerstone's adapters: the annotations
// drawn on a study's images become a measurement report sent with the import (the box stores it in
// the local PACS with the exam); when the exam is reopened, the report the box reads back from the
// local PACS becomes annotations again. Loaded on demand (adapters and dcmjs are a large chunk).
import { metaData, getRenderingEngine } from '@cornerstonejs/core';
import { annotation } from '@cornerstonejs/tools';
import { adaptersSR } from '@cornerstonejs/adapters';
import dcmjs from 'dcmjs';
import type { Series } from './dicomweb.js';
import { ENGINE_ID } from './cs.js';

const { MeasurementReport } = adaptersSR.Cornerstone3D;
const { DicomMessage, DicomMetaDictionary, datasetToDict } = dcmjs.data;

type Annotation = ReturnType<typeof annotation.state.getAllAnnotations>[number];

/** imageId → the DICOM JSON of its instance, for the study's series */
function instancesByImageId(series: Series[]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const s of series) for (const id of s.imageIds) {
    const inst = s.instances.find((i) => id.includes(`/instances/${i.sopUid}/`));
    if (inst) out.set(id, inst.meta);
  }
  return out;
}

/** The study's measurement annotations that the adapters know how to write (Length, Angle, ROIs…). */
export function studyMeasurements(series: Series[]): Annotation[] {
  const ids = instancesByImageId(series);
  return annotation.state.getAllAnnotations().filter((a) =>
    !!a.metadata && ids.has(a.metadata.referencedImageId ?? '') && MeasurementReport.measurementAdapterByToolType.has(a.metadata.toolName));
}

/** The study's measurements as a TID 1500 SR, base64 Part 10 (undefined when there are none). */
export function measurementReport(series: Series[]): string | undefined {
  const ids = instancesByImageId(series);
  const list = studyMeasurements(series);
  if (!list.length) return undefined;
  const toolState: Record<string, Record<string, { data: Annotation[] }>> = {};
  for (const a of list) ((toolState[a.metadata!.referencedImageId!] ??= {})[a.metadata!.toolName] ??= { data: [] }).data.push(a);
  // the patient and study modules of the report come from the image's own header (as the box got it)
  const provider = {
    get: (type: string, imageId: string) => (type === 'instance'
      ? DicomMetaDictionary.naturalizeDataset(structuredClone(ids.get(imageId)) as never)
      : metaData.get(type, imageId)),
  };
  const report = MeasurementReport.generateReport(toolState, provider, { SeriesDescription: 'Mesures', Manufacturer: 'DRIMbox' });
  const ds = report.dataset as Record<string, unknown>;
  ds.SpecificCharacterSet ??= 'ISO_IR 192';
  const bytes = new Uint8Array(datasetToDict(ds).write() as ArrayBuffer); // (datasetToBuffer needs Node's Buffer)
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Turns a TID 1500 SR (Part 10) back into annotations on the study's images; returns how many. */
export function restoreMeasurements(part10: ArrayBuffer, series: Series[]): number {
  const dict = DicomMessage.readFile(part10);
  const ds = DicomMetaDictionary.naturalizeDataset(dict.dict) as Record<string, unknown>;
  ds._meta = DicomMetaDictionary.namifyDataset(dict.meta);
  const byFrame: Record<string, string> = {};
  for (const s of series) for (const id of s.imageIds) {
    const m = /\/instances\/([^/]+)\/frames\/(\d+)/.exec(id);
    if (m) byFrame[`${m[1]}:${m[2]}`] = id;
  }
  const state = MeasurementReport.generateToolState(ds, byFrame, metaData, {}) as Record<string, { annotation: Annotation }[]>;
  let n = 0;
  for (const list of Object.values(state)) for (const m of list) {
    const a = m.annotation;
    const md = a.metadata;
    if (!md?.referencedImageId) continue; // an image this session does not show
    md.FrameOfReferenceUID ??= (metaData.get('imagePlaneModule', md.referencedImageId) as { frameOfReferenceUID?: string } | undefined)?.frameOfReferenceUID;
    annotation.state.addAnnotation(a, md.FrameOfReferenceUID as string);
    n++;
  }
  getRenderingEngine(ENGINE_ID)?.render();
  return n;
}
