-- One insurer, one organization (issue #15, point 5): files write a 6-digit insurer number as
-- `00` + 6 digits, so 133033 and 00133033 are the same insurer. The application refuses the
-- second form (`demo::add_org`); this index makes two inserts racing with the two forms end
-- with one organization (the loser gets a unique violation, `StoreError::Duplicate`).
CREATE UNIQUE INDEX organizations_insurer_six_digit ON organizations ((
    CASE WHEN length(insurer_number) = 8 AND substr(insurer_number, 1, 2) = '00'
         THEN substr(insurer_number, 3)
         ELSE insurer_number
    END
));
