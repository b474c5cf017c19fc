-- patients: the patient facts a payer packet prints (one patient's row per packet).
SELECT patient_id, birth_date, sex, diagnosis_code, payer, member_id, site
FROM patients
