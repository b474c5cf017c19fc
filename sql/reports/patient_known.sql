-- patient_known: whether a patient id is in the database (`report payer --patient`).
SELECT count(*) > 0 AS known FROM patients WHERE patient_id = $patient_id
