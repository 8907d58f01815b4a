import t from 'tap';
import { acceptedTransferSyntaxes, acceptsDicomJson, prefersSinglePartFrame, EXPLICIT_VR_LE } from '../../gateway/src/dicom/accept.js';

t.test('ANS WADO-RS Accept list keeps its q-value order', async (t) => {
  // the header the ANS validator sends (test/fixtures/ans/wado-rs/…) lists syntaxes with q-values
  const h = [
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.70; q=1',
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80; q=0.8',
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.91; q=0.7',
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1; q=0.1',
  ].join(', ');
  t.same(acceptedTransferSyntaxes(h), ['1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.91', EXPLICIT_VR_LE]);
});

t.test('q-values reorder, q=0 excludes, no transfer-syntax means Explicit VR LE', async (t) => {
  const h = 'multipart/related; type="application/dicom"; q=0.5, multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80, multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50; q=0';
  t.same(acceptedTransferSyntaxes(h), ['1.2.840.10008.1.2.4.80', EXPLICIT_VR_LE]);
});

t.test('wildcards mean as stored', async (t) => {
  t.same(acceptedTransferSyntaxes(undefined), ['*']);
  t.same(acceptedTransferSyntaxes('*/*'), ['*']);
  t.same(acceptedTransferSyntaxes('multipart/related; type="application/dicom"; transfer-syntax=*'), ['*']);
});

t.test('unacceptable representations are 406, garbage is 400', async (t) => {
  t.throws(() => acceptedTransferSyntaxes('application/json'), { name: 'AcceptError', status: 406 });
  t.throws(() => acceptedTransferSyntaxes('multipart/related; type="image/jpeg"'), { name: 'AcceptError', status: 406 });
  for (const bad of ['\u0000garbage', 'text', 'multipart/related; q=2', 'multipart/related; transfer-syntax=abc', 'x/y;;;;', 'a/b'.repeat(5000)]) {
    t.throws(() => acceptedTransferSyntaxes(bad), { name: 'AcceptError', status: 400 }, bad.slice(0, 30));
  }
  t.throws(() => acceptedTransferSyntaxes(Array(100).fill('multipart/related').join(',')), { name: 'AcceptError', status: 400 });
});

t.test('metadata accepts DICOM JSON', async (t) => {
  t.ok(acceptsDicomJson('application/dicom+json'));
  t.ok(acceptsDicomJson(undefined));
  t.notOk(acceptsDicomJson('application/xml'));
});

t.test('one frame is answered single part only when the client prefers a single part type', async (t) => {
  t.ok(prefersSinglePartFrame('application/octet-stream; transfer-syntax=*'), 'the viewer’s Accept');
  t.ok(prefersSinglePartFrame('application/octet-stream; transfer-syntax=*, multipart/related; type="application/octet-stream"; q=0.9'), 'single part first, multipart as fallback');
  t.ok(prefersSinglePartFrame('image/jls'), 'a compressed single part type');
  t.notOk(prefersSinglePartFrame('multipart/related; type="application/octet-stream"; transfer-syntax=*'), 'multipart asked');
  t.notOk(prefersSinglePartFrame('multipart/related; type="application/octet-stream"; q=1, application/octet-stream; q=0.5'), 'multipart preferred by q');
  t.notOk(prefersSinglePartFrame(undefined), 'no Accept: multipart, what every DICOMweb client reads');
  t.notOk(prefersSinglePartFrame('*/*'), 'a wildcard: multipart');
  t.notOk(prefersSinglePartFrame('application/json, multipart/related; type="application/octet-stream"'), 'a type that cannot carry a frame does not count');
});
